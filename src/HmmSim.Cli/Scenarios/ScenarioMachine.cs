namespace HmmSim.Cli.Scenarios;

/// <summary>The scenario's `machine` object; one fresh <see cref="Machine"/> per design.</summary>
internal sealed record ScenarioMachine
{
    public Architecture Architecture { get; init; } = Architecture.X86_64;
    public int PhysicalAddressBits { get; init; } = 46;
    public ulong RamBytes { get; init; } = 8UL << 30;
    public IReadOnlyList<PhysicalRange> PciWindows { get; init; } = [];
    public PciTopology PciTopology { get; init; } = PciTopology.CommonSwitch;
    public IReadOnlyList<DevicePrivateDesign> Designs { get; init; } = [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace];
    public ThpPolicy Thp { get; init; } = ThpPolicy.Madvise;
    public int HugetlbPages { get; init; } = 16;
    public ulong Seed { get; init; }
    public bool CheckInvariants { get; init; } = true;

    /// <summary>The user address space's end (TASK_SIZE): 47 bits on x86-64, 48 on arm64.</summary>
    public ulong TaskSize => Architecture == Architecture.Arm64 ? 1UL << 48 : 1UL << 47;

    public MachineConfig ToConfig(DevicePrivateDesign design) => new()
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
    };
}
