import sys

from sing_core.cli import main

sys.exit(main())
