"""Result records: one module per JSON schema, each record with `to_dict()` (the writer) and, for
the results infertool reads back, a typed reader."""
