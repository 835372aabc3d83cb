from infertool.cli.app import main

main()
