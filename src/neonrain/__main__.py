from neonrain.cli import main

main()
