import gc

gc.disable()  # until the console's first frame, or a verb's start: warroom.cli.main.main says why

from warroom.cli.main import main  # noqa: E402

raise SystemExit(main())
