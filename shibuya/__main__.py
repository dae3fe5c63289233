from shibuya.cli import main

main()
