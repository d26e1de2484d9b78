using HmmSim;

namespace GpuSim.Tests;

/// <summary>The example driver end to end: loaded into a machine, it migrates a process's pages into
/// its VRAM on a device fault, hands them back on a CPU fault, and leaves nothing behind.</summary>
public class GpuDeviceTests
{
    private const ulong Size = 64 * 4096;

    public static TheoryData<DevicePrivateDesign> Designs => new() { DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace };

    [Theory]
    [MemberData(nameof(Designs))]
    public void DeviceFaultMigratesToVramAndCpuFaultBringsItBack(DevicePrivateDesign design)
    {
        using var machine = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var gpu = machine.LoadModule(k => GpuDevice.Probe(k, 16UL << 20));
        Assert.NotNull(gpu);
        using var p = machine.CreateProcess();
        Assert.Equal(HmmSim.Errno.None, p.Mmap(0, Size, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
        var data = new byte[Size];
        for (int i = 0; i < (int)(Size / 4); i++)
            BitConverter.TryWriteBytes(data.AsSpan(i * 4), i);
        p.Write(a, data);

        var seen = new byte[Size];
        Assert.Equal(HmmSim.Kernel.Errno.None, gpu!.DeviceRead(p.Mm, a, seen));
        machine.CheckInvariants();
        Assert.Equal(64, gpu.PagesInUse);
        for (int i = 0; i < (int)(Size / 4); i++)
            Assert.Equal(i, BitConverter.ToInt32(seen, i * 4));
        // In VRAM the CPU's PTEs are device-private swap entries: pagemap says swapped, not present.
        Assert.Equal(0UL, p.PagemapEntry(a) & (1UL << 63));
        Assert.NotEqual(0UL, p.PagemapEntry(a) & (1UL << 62));

        // The CPU touches every page: migrate_to_ram brings each back with its data.
        var back = new byte[Size];
        p.Read(a, back);
        Assert.Equal(data, back);
        Assert.Equal(0, gpu.PagesInUse);
        Assert.NotEqual(0UL, p.PagemapEntry(a) & (1UL << 63));

        machine.LoadModule(_ => { gpu.Remove(); return 0; });
    }

    [Fact]
    public void RemoveEvictsWhatIsStillInVram()
    {
        using var machine = new Machine();
        var gpu = machine.LoadModule(k => GpuDevice.Probe(k, 4UL << 20))!;
        using var p = machine.CreateProcess();
        Assert.Equal(HmmSim.Errno.None, p.Mmap(0, Size, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
        p.WriteInt32(a, 7);
        Assert.Equal(HmmSim.Kernel.Errno.None, gpu.DeviceFault(p.Mm, a, Size / 4096));
        Assert.Equal(64, gpu.PagesInUse);
        machine.LoadModule(_ => { gpu.Remove(); return 0; });
        Assert.Equal(0, gpu.PagesInUse);
        Assert.Equal(7, p.ReadInt32(a));
    }
}
