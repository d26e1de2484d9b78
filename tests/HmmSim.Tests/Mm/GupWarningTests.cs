using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

/// <summary>The VM_WARN_ON / VM_BUG_ON checks of mm/gup.c and folio_get the model evaluates: a warning
/// is a dmesg line, and a KernelBugException when the checker is on; a VM_BUG_ON fires only with the
/// checker on (as with CONFIG_DEBUG_VM).</summary>
public class GupWarningTests
{
    private static readonly object _owner = new();

    /// <summary>A free page of a device-private pagemap: refcount 0, as zone_device_folio_init finds it.</summary>
    private static Folio FreeDeviceFolio(Machine m, out DevPagemap pgmap)
    {
        pgmap = new DevPagemap(MemoryType.DevicePrivate, _owner, new DevPagemapOps { FolioFree = _ => { }, MigrateToRam = _ => VmFaultResult.None });
        Assert.Equal(HmmSim.Kernel.Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 2UL << 20, "dev"));
        var folio = HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, 0).Folio;
        Assert.Equal(0, folio.RefCount);
        return folio;
    }

    [Fact]
    public void TryGrabFolioOnAFolioWithNoReferenceWarnsAndFailsWithEnomem()
    {
        using var m = new Machine(new MachineConfig { CheckInvariants = false });
        var folio = FreeDeviceFolio(m, out var pgmap);
        Assert.Equal(HmmSim.Kernel.Errno.ENOMEM, Gup.TryGrabFolio(folio, FollFlags.Pin));
        Assert.Equal(0, folio.RefCount);
        Assert.Contains(m.Dmesg(), l => l.StartsWith("WARNING: try_grab_folio", StringComparison.Ordinal));
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
    }

    [Fact]
    public void TryGrabFolioWarningIsAKernelBugWithTheCheckerOn()
    {
        using var m = new Machine();
        var folio = FreeDeviceFolio(m, out var pgmap);
        Assert.Throws<KernelBugException>(() => Gup.TryGrabFolio(folio, FollFlags.Get));
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
    }

    [Fact]
    public void FolioGetOfAFreeFolioIsAVmBugWithTheCheckerOn()
    {
        using var m = new Machine();
        var folio = FreeDeviceFolio(m, out var pgmap);
        Assert.Throws<KernelBugException>(folio.Get);
        Interlocked.Decrement(ref folio.Head.RefCount);   // undo the count the failed folio_get left
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
    }

    [Fact]
    public void FolioGetOfAFreeFolioIsNotCheckedWithoutTheChecker()
    {
        using var m = new Machine(new MachineConfig { CheckInvariants = false });
        var folio = FreeDeviceFolio(m, out _);
        folio.Get();
        Assert.Equal(1, folio.RefCount);
    }

    [Fact]
    public void UnpinningAnAnonymousPageThatIsNoLongerExclusiveWarns()
    {
        using var m = new Machine(new MachineConfig { CheckInvariants = false });
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        var one = new Page[1];
        Assert.Equal(1, p.PinUserPagesFast(a, one, FollFlags.Write));
        Assert.DoesNotContain(m.Dmesg(), l => l.StartsWith("WARNING", StringComparison.Ordinal));
        // What a missing pin check elsewhere would do: share a pinned page (e.g. a fork that did not copy it).
        one[0].Desc.Flags &= ~(uint)PageFlags.AnonExclusive;
        Gup.UnpinUserPage(one[0]);
        Assert.Contains(m.Dmesg(), l => l.StartsWith("WARNING: sanity_check_pinned_pages", StringComparison.Ordinal));
        Assert.Equal(0, one[0].Folio.PinCount);
    }

    [Fact]
    public void GupWithoutGetOrPinButWithPagesToFillWarns()
    {
        using var m = new Machine(new MachineConfig { CheckInvariants = false });
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        p.WriteInt32(a, 1);
        var one = new Page[1];
        p.Mm.MmapLock.EnterReadLock();
        try
        {
            Assert.Equal(1, Gup.GetUserPages(p.Mm, a, one, FollFlags.None));
        }
        finally
        {
            p.Mm.MmapLock.ExitReadLock();
        }
        Assert.Contains(m.Dmesg(), l => l.StartsWith("WARNING: __get_user_pages", StringComparison.Ordinal));
        Assert.Equal(1, one[0].Folio.RefCount);   // nothing was taken
    }
}
