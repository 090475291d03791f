import sys

from akri.cli import main

sys.exit(main())
