namespace HmmSim.Cli.Scenarios;

/// <summary>The scenario's `machine` object; one fresh <see cref="Machine"/> per design.</summary>
internal sealed record ScenarioMachine
{
    /// <summary>A scenario without a `machine` field gets the default machine.</summary>
    private static readonly MachineConfig _defaults = new();

    public Architecture Architecture { get; init; } = _defaults.Architecture;
    public int PhysicalAddressBits { get; init; } = _defaults.PhysicalAddressBits;
    public ulong RamBytes { get; init; } = _defaults.RamBytes;
    public IReadOnlyList<PhysicalRange> PciWindows { get; init; } = _defaults.PciWindows;
    public PciTopology PciTopology { get; init; } = _defaults.PciTopology;
    public IReadOnlyList<DevicePrivateDesign> Designs { get; init; } = [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace];
    public ThpPolicy Thp { get; init; } = _defaults.Thp;
    public int HugetlbPages { get; init; } = _defaults.HugetlbPages;
    public ulong Seed { get; init; } = _defaults.Seed;
    public bool CheckInvariants { get; init; } = _defaults.CheckInvariants;
    /// <summary>The design variants (`machine.variants`); the defaults are the latest posted behaviour.</summary>
    public DesignVariants Variants { get; init; } = _defaults.Variants;

    /// <summary>The user address space's end (TASK_SIZE): 47 bits on x86-64, 48 on arm64.</summary>
    public ulong TaskSize => Architecture == Architecture.Arm64 ? 1UL << 48 : 1UL << 47;

    /// <summary>The command line's --set overrides, applied after the file's fields.</summary>
    public MachineOverrides? Overrides { get; init; }

    public MachineConfig ToConfig(DevicePrivateDesign design) => Overrides?.Apply(FileConfig(design)) ?? FileConfig(design);

    private MachineConfig FileConfig(DevicePrivateDesign design) => new()
    {
        Architecture = Architecture,
        PhysicalAddressBits = PhysicalAddressBits,
        RamBytes = RamBytes,
        PciWindows = PciWindows,
        PciTopology = PciTopology,
        DevicePrivateDesign = design,
        Thp = Thp,
        HugetlbPages = HugetlbPages,
        Seed = Seed,
        CheckInvariants = CheckInvariants,
        Variants = Variants,
    };
}
