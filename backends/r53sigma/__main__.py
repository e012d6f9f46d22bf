import sys

from r53sigma.cli import main

sys.exit(main())
