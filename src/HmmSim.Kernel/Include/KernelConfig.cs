namespace HmmSim.Kernel;

/// <summary>What the kernel is booted with: the firmware's memory map and the build's options.
/// The composition root (HmmSim.Machine) derives it from the user's MachineConfig.</summary>
internal sealed record KernelConfig
{
    public Architecture Architecture { get; init; } = Architecture.X86_64;
    public int PhysicalAddressBits { get; init; } = 46;
    public ulong RamBytes { get; init; } = 8UL << 30;
    /// <summary>MMIO windows in the physical address space.</summary>
    public IReadOnlyList<PhysicalRange> PciWindows { get; init; } = [];
    public DevicePrivateDesign DevicePrivateDesign { get; init; } = DevicePrivateDesign.DeviceAddressSpace;
    public PciTopology PciTopology { get; init; } = PciTopology.CommonSwitch;
    /// <summary>CONFIG_DEBUG_VM with panic_on_warn: VM_BUG_ON and VM_WARN_ON checks throw.</summary>
    public bool CheckInvariants { get; init; } = true;
    public ulong Seed { get; init; }
    /// <summary>transparent_hugepage/enabled.</summary>
    public ThpPolicy Thp { get; init; } = ThpPolicy.Madvise;
    /// <summary>vm.nr_hugepages: 2 MiB pages reserved for hugetlbfs at boot.</summary>
    public int HugetlbPages { get; init; } = 16;
    /// <summary>The design variants: reviewer findings as posted, and the open proposals.</summary>
    public KernelVariants Variants { get; init; } = new();
}

/// <summary>CONFIG_X86_64 or CONFIG_ARM64.</summary>
internal enum Architecture { X86_64, Arm64 }

/// <summary>Where device-private pages get their identity: a range of physical address space
/// (today's kernel) or the device-private address space of the redesign.</summary>
internal enum DevicePrivateDesign { PhysicalAddressSpace, DeviceAddressSpace }

/// <summary>A range of physical address space.</summary>
/// <param name="Start">The first physical address.</param>
/// <param name="Length">The length in bytes.</param>
public readonly record struct PhysicalRange(ulong Start, ulong Length)
{
    /// <summary>The first byte after the range (Start + Length).</summary>
    public ulong End => Start + Length;
}

/// <summary>Where the test devices sit on PCI: behind one switch, or on separate root ports of a
/// host bridge that is not on the P2P whitelist.</summary>
internal enum PciTopology { CommonSwitch, SeparateRootPorts }

/// <summary>/sys/kernel/mm/transparent_hugepage/enabled.</summary>
internal enum ThpPolicy { Always, Madvise, Never }
