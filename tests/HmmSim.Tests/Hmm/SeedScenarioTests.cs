namespace HmmSim.Tests.Hmm;

/// <summary>Seed 004's machines, driven through the dmirror device: today's design cannot place
/// device-private memory, the redesign can.</summary>
public class SeedScenarioTests
{
    private const ulong Gib = 1UL << 30;

    private static MachineConfig Vm43(DevicePrivateDesign design) => new()
    {
        PhysicalAddressBits = 43,
        RamBytes = 8 * Gib,
        PciWindows = [new PhysicalRange(8 * Gib, (1UL << 43) - 8 * Gib)],
        DevicePrivateDesign = design,
    };

    private static MachineConfig Arm64(DevicePrivateDesign design) => new()
    {
        Architecture = Architecture.Arm64,
        PhysicalAddressBits = 48,
        RamBytes = 8 * Gib,
        PciWindows = [new PhysicalRange(8 * Gib, (1UL << 47) - 8 * Gib)],
        DevicePrivateDesign = design,
    };

    public static TheoryData<string> Machines => ["vm43", "arm64"];

    private static MachineConfig Config(string name, DevicePrivateDesign design) => name == "vm43" ? Vm43(design) : Arm64(design);

    [Theory]
    [MemberData(nameof(Machines))]
    public void DevicePrivateUnitsAreAbsentInTodaysDesign(string machine)
    {
        using var m = new Machine(Config(machine, DevicePrivateDesign.PhysicalAddressSpace));
        var p = m.CreateProcess();
        for (int unit = 0; unit < 2; unit++)
        {
            Assert.False(m.HasDmirror(unit));
            var ex = Assert.Throws<ErrnoException>(() => p.OpenDmirror(unit));
            Assert.Equal(Errno.ENOENT, ex.Errno);
            Assert.Contains(m.Dmesg(), l => l.StartsWith($"hmm_dmirror{unit}: probe failed", StringComparison.Ordinal) && l.Contains("-ERANGE", StringComparison.Ordinal));
        }
        Assert.Contains(m.Dmesg(), l => l.Contains("request_free_mem_region", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Machines))]
    public void DevicePrivateUnitsWorkInTheRedesign(string machine)
    {
        using var m = new Machine(Config(machine, DevicePrivateDesign.DeviceAddressSpace));
        var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        const ulong npages = 64;
        Assert.Equal(Errno.None, p.Mmap(0, npages * 4096, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
        for (ulong i = 0; i < npages; i++)
            p.WriteInt32(a + i * 4096, (int)i * 7);
        var mirror = new byte[npages * 4096];
        Assert.Equal(new DmirrorResult(Errno.None, npages, 0), dev.MigrateToDevice(a, npages, mirror));
        var prot = new byte[npages];
        Assert.Equal(Errno.None, dev.Snapshot(a, npages, prot).Error);
        Assert.All(prot, b => Assert.Equal((byte)(DmirrorProt.DevPrivateLocal | DmirrorProt.Write), b));
        // The CPU faults every page back (migrate_to_ram) and sees the data.
        for (ulong i = 0; i < npages; i++)
            Assert.Equal((int)i * 7, p.ReadInt32(a + i * 4096));
        Assert.DoesNotContain("hmm_dmirror\n", m.Iomem() + "\n", StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Machines))]
    public void CoherentUnitsHaveNoSpecialPurposeMemoryWhereThePciWindowFillsTheSpace(string machine)
    {
        using var m = new Machine(Config(machine, DevicePrivateDesign.DeviceAddressSpace));
        Assert.False(m.HasDmirror(2));
        Assert.False(m.HasDmirror(3));
        Assert.Contains(m.Dmesg(), l => l.Contains("spm_addr_dev0", StringComparison.Ordinal));
    }

    [Fact]
    public void TheDefaultMachineProbesAllFourUnits()
    {
        using var m = new Machine();
        for (int unit = 0; unit < 4; unit++)
            Assert.True(m.HasDmirror(unit), $"unit {unit}: {string.Join(" | ", m.Dmesg())}");
        Assert.Throws<ErrnoException>(() => m.CreateProcess().OpenDmirror(4));
    }
}
