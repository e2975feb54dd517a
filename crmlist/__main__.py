"""`python -m crmlist`."""

from crmlist.cli import main

if __name__ == "__main__":
    main()
