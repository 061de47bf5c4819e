from nodeagent.cli.admin import main

main()
