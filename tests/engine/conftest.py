import sys
from pathlib import Path

# the tiny test method and the subprocess driver live beside the tests
HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
