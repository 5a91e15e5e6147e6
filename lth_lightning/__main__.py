from lth_lightning.cli import main

main()
