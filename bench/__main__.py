from bench.run.cli import main

raise SystemExit(main())
