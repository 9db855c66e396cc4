from ferlab.commands.cli import main

main()
