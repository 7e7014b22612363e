import sys

from emcore.cli import main

sys.exit(main())
