from otgen.cli import main

raise SystemExit(main())
