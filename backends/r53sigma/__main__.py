"""`python -m r53sigma`: the r53sigma command line."""
import sys

from r53sigma.cli import main

sys.exit(main())
