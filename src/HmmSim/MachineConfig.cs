namespace HmmSim;

/// <summary>The machine to boot. Defaults are those of shared/API.md; <c>new Machine()</c> boots an
/// x86-64 machine with 8 GiB of RAM, 46 physical address bits and the redesign. <see cref="Machine"/>'s
/// constructor throws <see cref="ArgumentException"/> for values the kernel could not boot with.</summary>
public sealed record MachineConfig
{
    /// <summary>The page-table format (x86-64 or arm64). Default <see cref="Architecture.X86_64"/>.</summary>
    public Architecture Architecture { get; init; } = Architecture.X86_64;
    /// <summary>The width of the physical address space in bits: 32 up to the architecture's MAX_PHYSMEM_BITS
    /// (46 on x86-64, 48 on arm64). Default 46. Today's design carves device-private ranges out of it.</summary>
    public int PhysicalAddressBits { get; init; } = 46;
    /// <summary>System RAM in bytes: at least 64 MiB, a multiple of 4 MiB (MAX_PAGE_ORDER blocks), at
    /// most 16 TiB and within the physical address space. Default 8 GiB.</summary>
    public ulong RamBytes { get; init; } = 8UL << 30;
    /// <summary>MMIO windows in the physical address space (each one a /proc/iomem region). Default none.</summary>
    public IReadOnlyList<PhysicalRange> PciWindows { get; init; } = [];
    /// <summary>Where device-private pages get their identity. Default <see cref="DevicePrivateDesign.DeviceAddressSpace"/>, the redesign.</summary>
    public DevicePrivateDesign DevicePrivateDesign { get; init; } = DevicePrivateDesign.DeviceAddressSpace;
    /// <summary>DEBUG_VM: the invariant checker runs after every operation (and teardown is checked for
    /// leaks on Dispose); a finding throws <see cref="KernelBugException"/>. Default true; turn it off
    /// for large workloads and benchmarks.</summary>
    public bool CheckInvariants { get; init; } = true;
    /// <summary>Where the dmirror units sit on PCI, which decides whether P2P DMA between them works.
    /// Default <see cref="PciTopology.CommonSwitch"/>.</summary>
    public PciTopology PciTopology { get; init; } = PciTopology.CommonSwitch;
    /// <summary>A seed handed to the kernel's configuration for pseudo-random choices. The model is
    /// deterministic today (no ASLR, fixed allocation order) and no kernel path reads it yet. Default 0.</summary>
    public ulong Seed { get; init; }
    /// <summary>transparent_hugepage/enabled; the kernel's default is madvise.</summary>
    public ThpPolicy Thp { get; init; } = ThpPolicy.Madvise;
    /// <summary>vm.nr_hugepages: 2 MiB pages reserved for hugetlbfs at boot (MAP_HUGETLB). Default 16; not negative.</summary>
    public int HugetlbPages { get; init; } = 16;
    /// <summary>The design variants (reviewer findings and open proposals) this machine runs with.
    /// Default: every switch at the latest posted behaviour. All but
    /// <see cref="DesignVariants.PgmapPlacement"/> need <see cref="DevicePrivateDesign.DeviceAddressSpace"/>.</summary>
    public DesignVariants Variants { get; init; } = new();
}
