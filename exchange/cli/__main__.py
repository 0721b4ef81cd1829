from exchange.cli import main

main(prog_name="puente")
