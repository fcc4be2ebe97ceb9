def preload(parser):
    parser.add_argument(
        "--singdiffusion-dir",
        type=str,
        default=None,
        help="an extra folder of SingDiffusion modules, searched after models/SingDiffusion",
    )
