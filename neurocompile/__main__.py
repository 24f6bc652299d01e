from neurocompile.cli.main import main

main()
