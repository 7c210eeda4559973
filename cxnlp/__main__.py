from cxnlp.cli import main

main()
