namespace HmmSim.Cli.Workloads;

/// <summary>The seeds' VM: the machine the project's seed reports came from, named once here. `run`
/// without a file, its HTML report and `layout` use it instead of <see cref="MachineConfig"/>'s
/// default machine (46-bit) on purpose: on 43 bits a PCI window over everything above RAM leaves
/// today's design no free physical range for device-private memory (the probe fails with ENOENT),
/// which is the case those commands exist to show next to the redesign.</summary>
public static class SeedMachines
{
    public const int PhysicalAddressBits = 43;
    public const ulong RamBytes = 8UL << 30;

    /// <summary>How `run` and its report describe the seeds' VM and its device.</summary>
    public static string Description =>
        $"x86-64, {PhysicalAddressBits}-bit physical addresses, {RamBytes >> 30} GiB RAM, a PCI window over everything above RAM; a GPU-like device-private device (hmm_dmirror0).";

    /// <summary>The seeds' VM under one design; every field not set here is the default machine's.</summary>
    public static MachineConfig Vm(DevicePrivateDesign design) => new()
    {
        PhysicalAddressBits = PhysicalAddressBits,
        RamBytes = RamBytes,
        PciWindows = [PciWindowAboveRam(RamBytes, PhysicalAddressBits)],
        DevicePrivateDesign = design,
    };

    /// <summary>One PCI window from the end of RAM to the top of the physical address space.</summary>
    public static PhysicalRange PciWindowAboveRam(ulong ramBytes, int physicalAddressBits) =>
        new(ramBytes, (1UL << physicalAddressBits) - ramBytes);
}
