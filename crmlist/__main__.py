"""`python -m crmlist`."""

from crmlist.cli import main

main()
