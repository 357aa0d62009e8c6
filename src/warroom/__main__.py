from warroom.cli.main import main

raise SystemExit(main())
