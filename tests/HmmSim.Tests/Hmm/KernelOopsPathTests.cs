namespace HmmSim.Tests.HmmDevice;

/// <summary>Paths on which lib/test_hmm.c, on a real kernel, touches device-private memory through
/// the CPU. The model raises KernelBugException there; these tests pin the paths down.</summary>
public class KernelOopsPathTests
{
    private const ulong PageSize = 4096;
    private const int NPages = 16;

    public static TheoryData<DevicePrivateDesign> Designs =>
        [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace];

    private static ulong MapAndMigrate(Process p, Dmirror d)
    {
        Assert.Equal(Errno.None, p.Mmap(0, NPages * PageSize, Prot.Read | Prot.Write,
            MapFlags.Private | MapFlags.Anonymous, out var a));
        for (int i = 0; i < NPages; i++)
            p.WriteInt32(a + (ulong)i * PageSize, i + 1);
        var mirror = new byte[NPages * PageSize];
        Assert.Equal(Errno.None, d.MigrateToDevice(a, NPages, mirror).Error);
        return a;
    }

    /// <summary>mprotect invalidates unit 0's mirror; the next READ through unit 0 gets the owned
    /// device-private page from hmm_range_fault, stores it in the xarray (dmirror_do_fault stores
    /// hmm_pfn_to_page), and dmirror_do_read kmaps it.</summary>
    [Theory]
    [MemberData(nameof(Designs))]
    public void DeviceReadAfterMprotectOfOwnDevicePrivatePagesReadsDeviceMemoryThroughCpu(DevicePrivateDesign design)
    {
        var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        var d = p.OpenDmirror(0);
        ulong a = MapAndMigrate(p, d);
        Assert.Equal(Errno.None, p.Mprotect(a, NPages * PageSize, Prot.Read));
        var buf = new byte[NPages * PageSize];
        var ex = Assert.Throws<KernelBugException>(() => d.Read(a, NPages, buf));
        Assert.Contains("device-private", ex.Message);
    }

    /// <summary>fork write-protects the parent's device-private entries (copy_nonpresent_pte) under
    /// an invalidation that empties unit 0's mirror; the parent's next READ through unit 0 takes
    /// the same path as after mprotect.</summary>
    [Theory]
    [MemberData(nameof(Designs))]
    public void ParentDeviceReadAfterForkReadsDeviceMemoryThroughCpu(DevicePrivateDesign design)
    {
        var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        var d = p.OpenDmirror(0);
        ulong a = MapAndMigrate(p, d);
        _ = p.Fork();
        var buf = new byte[NPages * PageSize];
        var ex = Assert.Throws<KernelBugException>(() => d.Read(a, NPages, buf));
        Assert.Contains("device-private", ex.Message);
    }

    /// <summary>A child's own open of the same unit has an empty mirror: its READ of the pages it
    /// shares with the parent on unit 0 is reported as owned device-private (same owner) and takes
    /// the same path.</summary>
    [Theory]
    [MemberData(nameof(Designs))]
    public void ChildDeviceReadOfInheritedDevicePrivatePagesReadsDeviceMemoryThroughCpu(DevicePrivateDesign design)
    {
        var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        var d = p.OpenDmirror(0);
        ulong a = MapAndMigrate(p, d);
        var child = p.Fork();
        var dc = child.OpenDmirror(0);
        var buf = new byte[NPages * PageSize];
        var ex = Assert.Throws<KernelBugException>(() => dc.Read(a, NPages, buf));
        Assert.Contains("device-private", ex.Message);
    }

    /// <summary>dmirror_interval_invalidate erases [start, end] inclusively (xa_for_each_range), so
    /// unit 1 migrating the page just below also drops unit 0's entry for its own device page; unit
    /// 0's READ of that page then faults it in as the device page itself.</summary>
    [Theory]
    [MemberData(nameof(Designs))]
    public void DeviceReadAfterOtherUnitMigratesThePageBelowReadsDeviceMemoryThroughCpu(DevicePrivateDesign design)
    {
        var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        var d0 = p.OpenDmirror(0);
        var d1 = p.OpenDmirror(1);
        Assert.Equal(Errno.None, p.Mmap(0, 2 * PageSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out var a));
        p.WriteInt32(a, 1);
        p.WriteInt32(a + PageSize, 2);
        var page = new byte[PageSize];
        Assert.Equal(Errno.None, d0.MigrateToDevice(a + PageSize, 1, page).Error);
        Assert.Equal(Errno.None, d1.MigrateToDevice(a, 1, page).Error);
        var ex = Assert.Throws<KernelBugException>(() => d0.Read(a + PageSize, 1, page));
        Assert.Contains("device-private", ex.Message);
    }

    /// <summary>The same inclusive erase from munmap of the page below; the WRITE path then stores the
    /// writable device page (HMM_PFN_WRITE from the WRITE device-private entry) and dmirror_do_write
    /// copies into it.</summary>
    [Theory]
    [MemberData(nameof(Designs))]
    public void DeviceWriteAfterMunmapOfThePageBelowWritesDeviceMemoryThroughCpu(DevicePrivateDesign design)
    {
        var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var p = m.CreateProcess();
        var d = p.OpenDmirror(0);
        Assert.Equal(Errno.None, p.Mmap(0, 2 * PageSize, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out var a));
        p.WriteInt32(a, 1);
        p.WriteInt32(a + PageSize, 2);
        var page = new byte[PageSize];
        Assert.Equal(Errno.None, d.MigrateToDevice(a + PageSize, 1, page).Error);
        Assert.Equal(Errno.None, p.Munmap(a, PageSize));
        var ex = Assert.Throws<KernelBugException>(() => d.Write(a + PageSize, 1, page));
        Assert.Contains("device-private", ex.Message);
    }
}
