import sys

from studio_core.cli import main

sys.exit(main())
