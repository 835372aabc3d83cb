"""TensorRT engines: parse -> precision plan -> config -> build -> inspect -> save (+ sidecar JSON)."""
