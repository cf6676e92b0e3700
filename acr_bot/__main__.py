from acr_bot.cli import main

main()
