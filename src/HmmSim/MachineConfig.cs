namespace HmmSim;

/// <summary>The machine to boot. Defaults are those of shared/API.md.</summary>
public sealed record MachineConfig
{
    public Architecture Architecture { get; init; } = Architecture.X86_64;
    public int PhysicalAddressBits { get; init; } = 46;
    public ulong RamBytes { get; init; } = 8UL << 30;
    /// <summary>MMIO windows in the physical address space.</summary>
    public IReadOnlyList<PhysicalRange> PciWindows { get; init; } = [];
    public DevicePrivateDesign DevicePrivateDesign { get; init; } = DevicePrivateDesign.DeviceAddressSpace;
    /// <summary>DEBUG_VM: the invariant checker runs after every operation.</summary>
    public bool CheckInvariants { get; init; } = true;
    public PciTopology PciTopology { get; init; } = PciTopology.CommonSwitch;
    public ulong Seed { get; init; }
    /// <summary>transparent_hugepage/enabled; the kernel's default is madvise.</summary>
    public ThpPolicy Thp { get; init; } = ThpPolicy.Madvise;
    /// <summary>vm.nr_hugepages: 2 MiB pages reserved for hugetlbfs at boot.</summary>
    public int HugetlbPages { get; init; } = 16;
}
