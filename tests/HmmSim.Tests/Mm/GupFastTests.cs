using static HmmSim.Tests.Mm.MmTestHelpers;

namespace HmmSim.Tests.Mm;

/// <summary>GUP-fast (get_user_pages_fast, pin_user_pages_fast, get_user_pages_fast_only): what the
/// lockless walk takes, what it refuses, and the slow path doing the rest. A refusal is shown two
/// ways: the fast-only call stops at the page, and a call made while this thread holds mmap_lock for
/// write throws LockRecursionException, because only the slow path takes mmap_lock.</summary>
public class GupFastTests
{
    public static TheoryData<DevicePrivateDesign> Designs => [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace];

    private static Machine NewMachine(DevicePrivateDesign design, bool checkInvariants = true) =>
        new(new MachineConfig { DevicePrivateDesign = design, CheckInvariants = checkInvariants });

    /// <summary><paramref name="pages"/> pages, page i holding the int 1000 + i.</summary>
    private static ulong MapFilled(Process p, int pages)
    {
        ulong a = Map(p, (ulong)pages * PageSize);
        for (int i = 0; i < pages; i++)
            p.WriteInt32(a + (ulong)i * PageSize, 1000 + i);
        return a;
    }

    private static int Data(Page page) => BitConverter.ToInt32(page.ReadData());

    /// <summary>Runs <paramref name="body"/> with <paramref name="p"/>'s mmap_lock held for write by this
    /// thread: the lockless walk completes, the slow path throws LockRecursionException.</summary>
    private static long WithMmapLockHeld(Process p, Func<long> body)
    {
        p.Mm.MmapLock.EnterWriteLock();
        try
        {
            return body();
        }
        finally
        {
            p.Mm.MmapLock.ExitWriteLock();
        }
    }

    private static long FastOnly(Process p, ulong addr, Span<Page> pages, FollFlags flags = FollFlags.None) =>
        Gup.GetUserPagesFastOnly(p.Mm, addr, pages, flags);

    /// <summary>Each of <paramref name="pages"/> is the page mapped at its address, holding <paramref name="data"/>(i).</summary>
    private static void AssertMappedHere(Process p, ulong a, Page[] pages, Func<int, int> data)
    {
        for (int i = 0; i < pages.Length; i++)
        {
            ulong entry = p.PagemapEntry(a + (ulong)i * PageSize);
            Assert.True(Present(entry));
            Assert.Equal(Pfn(entry), pages[i].ToPfn().Value);
            Assert.Equal(data(i), Data(pages[i]));
        }
    }

    private static void PutAll(ReadOnlySpan<Page> pages)
    {
        foreach (var page in pages)
            Gup.PutPage(page);
    }

    private static void UnpinAll(ReadOnlySpan<Page> pages)
    {
        foreach (var page in pages)
            Gup.UnpinUserPage(page);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void PresentPagesAreTakenWithoutMmapLockAndTheRestFallsBackToTheSlowPath(DevicePrivateDesign design)
    {
        using var m = NewMachine(design);
        using var p = m.CreateProcess();
        ulong a = MapFilled(p, 8);
        var pages = new Page[8];
        Assert.Equal(8, WithMmapLockHeld(p, () => Gup.GetUserPagesFast(p.Mm, a, pages, FollFlags.Write)));
        AssertMappedHere(p, a, pages, i => 1000 + i);
        Assert.All(pages, page => Assert.Equal(2, page.Folio.RefCount));   // the mapping's and ours
        PutAll(pages);
        Assert.All(pages, page => Assert.Equal(1, page.Folio.RefCount));

        // An unpopulated page has no PTE to take: the slow path faults it in (under mmap_lock).
        ulong b = Map(p, PageSize);
        var one = new Page[1];
        Assert.Throws<LockRecursionException>(() => WithMmapLockHeld(p, () => Gup.GetUserPagesFast(p.Mm, b, one, FollFlags.Write)));
        Assert.Equal(1, p.GetUserPagesFast(b, one, FollFlags.Write));
        Assert.Equal(Pfn(p.PagemapEntry(b)), one[0].ToPfn().Value);
        PutAll(one);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void FastOnlyStopsAtTheFirstPageItCannotTakeAndTheFallbackGetsTheRest(DevicePrivateDesign design)
    {
        using var m = NewMachine(design);
        using var p = m.CreateProcess();
        ulong a = Map(p, 8 * PageSize);
        for (int i = 0; i < 3; i++)
            p.WriteInt32(a + (ulong)i * PageSize, 1000 + i);
        var pages = new Page[8];
        Assert.Equal(3, FastOnly(p, a, pages));
        PutAll(pages.AsSpan(0, 3));
        Array.Clear(pages);
        Assert.Equal(8, p.GetUserPagesFast(a, pages, FollFlags.Write));
        AssertMappedHere(p, a, pages, i => i < 3 ? 1000 + i : 0);
        PutAll(pages);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void DevicePrivateEntriesAreLeftToTheSlowPathWhichMigratesThemBack(DevicePrivateDesign design)
    {
        using var m = NewMachine(design);
        using var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        ulong a = MapFilled(p, 4);
        Assert.Equal(new DmirrorResult(Errno.None, 2, 0), dev.MigrateToDevice(a + PageSize, 2, new byte[2 * PageSize]));
        Assert.False(Present(p.PagemapEntry(a + PageSize)));
        var pages = new Page[4];
        Assert.Equal(1, FastOnly(p, a, pages));
        PutAll(pages.AsSpan(0, 1));
        Assert.Equal(4, p.GetUserPagesFast(a, pages, FollFlags.None));
        Assert.All(pages, page => Assert.False(page.IsZoneDevice));
        AssertMappedHere(p, a, pages, i => 1000 + i);
        PutAll(pages);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void DevicePrivatePmdIsLeftToTheSlowPath(DevicePrivateDesign design)
    {
        using var m = NewMachine(design);
        using var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        ulong h = MapThp(p);
        for (int i = 0; i < 512; i++)
            p.WriteInt32(h + (ulong)i * PageSize, 5000 + i);
        Assert.Equal(Errno.None, dev.MigrateToDevice(h, 512, new byte[PmdSize]).Error);
        var arch = m.Kernel.Arch;
        Assert.True(p.Mm.PmdTable(h, alloc: false, out var pmdTable));
        ulong pmd = p.Mm.PmdRef(pmdTable, h);
        Assert.False(arch.IsTable(pmd));
        Assert.False(arch.PmdPresent(pmd));
        var pages = new Page[512];
        Assert.Equal(0, FastOnly(p, h, pages));
        Assert.Equal(512, p.GetUserPagesFast(h, pages, FollFlags.None));
        Assert.All(pages, page => Assert.False(page.IsZoneDevice));
        AssertMappedHere(p, h, pages, i => 5000 + i);
        PutAll(pages);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void MigrationEntryEndsTheLocklessWalk(DevicePrivateDesign design)
    {
        using var m = NewMachine(design);
        using var p = m.CreateProcess();
        ulong a = MapFilled(p, 2);
        var pages = new Page[2];
        Assert.Equal(2, FastOnly(p, a, pages));
        var second = pages[1];
        PutAll(pages);
        var arch = m.Kernel.Arch;
        Assert.True(p.Mm.WalkToPte(a + PageSize, out var pteTable));
        ulong orig;
        // What try_to_migrate leaves while the folio is being copied.
        lock (p.Mm.PageTableLock)
        {
            ref ulong slot = ref p.Mm.PteRef(pteTable, a + PageSize);
            orig = slot;
            slot = arch.SwpEntryToPte(m.Kernel.Swapops.MakeReadableMigrationEntryFromPage(second));
        }
        Assert.Equal(1, FastOnly(p, a, pages));
        Assert.Equal(1000, Data(pages[0]));
        PutAll(pages.AsSpan(0, 1));
        lock (p.Mm.PageTableLock)
            p.Mm.PteRef(pteTable, a + PageSize) = orig;
        Assert.Equal(2, FastOnly(p, a, pages));
        Assert.Equal(second, pages[1]);
        PutAll(pages);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void DeviceExclusiveEntryIsLeftToTheSlowPathWhichRestoresThePte(DevicePrivateDesign design)
    {
        using var m = NewMachine(design);
        using var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        ulong a = MapFilled(p, 2);
        Assert.Equal(new DmirrorResult(Errno.None, 1, 0), dev.Exclusive(a + PageSize, 1, new byte[PageSize]));
        Assert.False(Present(p.PagemapEntry(a + PageSize)));
        var pages = new Page[2];
        Assert.Equal(1, FastOnly(p, a, pages, FollFlags.Write));
        PutAll(pages.AsSpan(0, 1));
        Assert.Equal(2, p.GetUserPagesFast(a, pages, FollFlags.Write));
        Assert.True(Present(p.PagemapEntry(a + PageSize)));
        Assert.Equal(Pfn(p.PagemapEntry(a + PageSize)), pages[1].ToPfn().Value);
        Assert.Equal(1001, Data(pages[1]));
        PutAll(pages);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void TheSpecialZeroPageIsLeftToTheSlowPath(DevicePrivateDesign design)
    {
        using var m = NewMachine(design);
        using var p = m.CreateProcess();
        ulong a = Map(p, PageSize);
        Assert.Equal(0, p.ReadInt32(a));
        Assert.Equal(m.Kernel.ZeroPfn.Value, Pfn(p.PagemapEntry(a)));
        var one = new Page[1];
        Assert.Equal(0, FastOnly(p, a, one));
        Assert.Equal(1, p.GetUserPagesFast(a, one, FollFlags.None));
        Assert.Equal(m.Kernel.ZeroPfn, one[0].ToPfn());
        PutAll(one);
        // A write GUP breaks COW of the zero page in the slow path.
        Assert.Equal(1, p.GetUserPagesFast(a, one, FollFlags.Write));
        Assert.NotEqual(m.Kernel.ZeroPfn, one[0].ToPfn());
        Assert.Equal(Pfn(p.PagemapEntry(a)), one[0].ToPfn().Value);
        Assert.Equal(0, Data(one[0]));
        PutAll(one);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void TheHugeZeroPmdIsSpecialAndLeftToTheSlowPath(DevicePrivateDesign design)
    {
        using var m = NewMachine(design);
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        Assert.Equal(0, p.ReadInt32(h));
        Assert.Equal(m.Kernel.HugeZeroPfn.Value, Pfn(p.PagemapEntry(h)));
        var pages = new Page[512];
        Assert.Equal(0, FastOnly(p, h, pages));
        Assert.Equal(512, p.GetUserPagesFast(h, pages, FollFlags.None));
        for (int i = 0; i < 512; i++)
            Assert.Equal(m.Kernel.HugeZeroPfn.Value + (ulong)i, pages[i].ToPfn().Value);
        PutAll(pages);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void PmdMappedThpIsTakenWholeAndPinnedOncePerPage(DevicePrivateDesign design)
    {
        using var m = NewMachine(design);
        using var p = m.CreateProcess();
        ulong h = MapThp(p);
        for (int i = 0; i < 512; i++)
            p.WriteInt32(h + (ulong)i * PageSize, 7000 + i);
        var pages = new Page[512];
        var folio = m.Kernel.Memmap.PfnToPage(new Pfn(Pfn(p.PagemapEntry(h)))).Folio;
        Assert.Equal(9, folio.Order);
        int refs = folio.RefCount;
        Assert.Equal(512, WithMmapLockHeld(p, () => Gup.PinUserPagesFast(p.Mm, h, pages, FollFlags.Write)));
        Assert.Equal(512, folio.PinCount);
        Assert.Equal(refs + 512, folio.RefCount);
        for (int i = 0; i < 512; i++)
        {
            Assert.Equal(folio.Page(i), pages[i]);
            Assert.Equal(7000 + i, Data(pages[i]));
        }
        UnpinAll(pages);
        Assert.Equal(0, folio.PinCount);
        Assert.Equal(refs, folio.RefCount);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void DeviceCoherentPagesAreTakenFastButALongtermPinMigratesThemToRam(DevicePrivateDesign design)
    {
        using var m = NewMachine(design);
        using var p = m.CreateProcess();
        using var dev = p.OpenDmirror(2);
        ulong a = MapFilled(p, 2);
        Assert.Equal(new DmirrorResult(Errno.None, 2, 0), dev.MigrateToDevice(a, 2, new byte[2 * PageSize]));
        var pages = new Page[2];
        // A plain reference is fine on coherent memory; as in today's kernel no pgmap reference is taken.
        Assert.Equal(2, FastOnly(p, a, pages, FollFlags.Write));
        var pgmap = pages[0].Pgmap!;
        long pgmapRefs = pgmap.References;
        Assert.All(pages, page => Assert.True(page.IsDeviceCoherent));
        Assert.Equal(1000, Data(pages[0]));
        Assert.Equal(pgmapRefs, pgmap.References);
        PutAll(pages);

        // FOLL_LONGTERM: coherent memory must stay evictable, so GUP-fast refuses and the slow path migrates.
        Assert.Throws<LockRecursionException>(() => WithMmapLockHeld(p, () => Gup.PinUserPagesFast(p.Mm, a, pages, FollFlags.Write | FollFlags.Longterm)));
        Assert.All(pages, page => Assert.True(page.IsDeviceCoherent));
        Assert.All(pages, page => Assert.Equal(1, page.Folio.RefCount));   // the refused attempt took nothing
        Assert.Equal(2, p.PinUserPagesFast(a, pages, FollFlags.Write | FollFlags.Longterm));
        Assert.All(pages, page => Assert.False(page.IsZoneDevice));
        Assert.All(pages, page => Assert.Equal(1, page.Folio.PinCount));
        AssertMappedHere(p, a, pages, i => 1000 + i);
        UnpinAll(pages);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void ReadOnlyPinOfACowSharedPageIsUnsharedByTheSlowPath(DevicePrivateDesign design)
    {
        using var m = NewMachine(design);
        using var p = m.CreateProcess();
        ulong a = MapFilled(p, 1);
        using var child = p.Fork();
        ulong shared = Pfn(p.PagemapEntry(a));
        Assert.Equal(shared, Pfn(child.PagemapEntry(a)));
        var one = new Page[1];
        // A reference does not care that the page is shared.
        Assert.Equal(1, FastOnly(p, a, one));
        Assert.Equal(shared, one[0].ToPfn().Value);
        PutAll(one);
        // A pin does (gup_must_unshare): GUP-fast refuses, the slow path unshares (FAULT_FLAG_UNSHARE).
        Assert.Throws<LockRecursionException>(() => WithMmapLockHeld(p, () => Gup.PinUserPagesFast(p.Mm, a, one, FollFlags.None)));
        Assert.Equal(1, p.PinUserPagesFast(a, one, FollFlags.None));
        Assert.NotEqual(shared, one[0].ToPfn().Value);
        Assert.Equal(Pfn(p.PagemapEntry(a)), one[0].ToPfn().Value);
        Assert.True(one[0].AnonExclusive);
        Assert.Equal(1000, Data(one[0]));
        Assert.Equal(shared, Pfn(child.PagemapEntry(a)));
        Gup.UnpinUserPage(one[0]);
        // Now exclusive, a second read-only pin is taken by the lockless walk.
        Assert.Equal(1, WithMmapLockHeld(p, () => Gup.PinUserPagesFast(p.Mm, a, one, FollFlags.None)));
        Gup.UnpinUserPage(one[0]);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void WritePinOfAWriteProtectedPteBreaksCowInTheSlowPath(DevicePrivateDesign design)
    {
        using var m = NewMachine(design);
        using var p = m.CreateProcess();
        ulong a = MapFilled(p, 1);
        using var child = p.Fork();
        ulong shared = Pfn(child.PagemapEntry(a));
        var one = new Page[1];
        Assert.Throws<LockRecursionException>(() => WithMmapLockHeld(p, () => Gup.PinUserPagesFast(p.Mm, a, one, FollFlags.Write)));
        Assert.Equal(1, p.PinUserPagesFast(a, one, FollFlags.Write));
        Assert.NotEqual(shared, one[0].ToPfn().Value);
        BitConverter.TryWriteBytes(one[0].WriteData(), 4242);
        Assert.Equal(4242, p.ReadInt32(a));
        Assert.Equal(1000, child.ReadInt32(a));
        Gup.UnpinUserPage(one[0]);
    }

    [Fact]
    public void PinsBackOffWhileForkIsWriteProtectingButReferencesDoNot()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = MapFilled(p, 1);
        var one = new Page[1];
        p.Mm.WriteProtectSeqBegin();
        Assert.Throws<LockRecursionException>(() => WithMmapLockHeld(p, () => Gup.PinUserPagesFast(p.Mm, a, one, FollFlags.Write)));
        Assert.Equal(1, WithMmapLockHeld(p, () => Gup.GetUserPagesFast(p.Mm, a, one, FollFlags.Write)));
        PutAll(one);
        p.Mm.WriteProtectSeqEnd();
        Assert.Equal(1, WithMmapLockHeld(p, () => Gup.PinUserPagesFast(p.Mm, a, one, FollFlags.Write)));
        Assert.Equal(1, one[0].Folio.PinCount);
        Gup.UnpinUserPage(one[0]);
    }

    [Fact]
    public void InternalOrInconsistentFlagsWarnAndFailWithEinval()
    {
        using var m = new Machine(new MachineConfig { CheckInvariants = false });
        using var p = m.CreateProcess();
        ulong a = MapFilled(p, 1);
        var one = new Page[1];
        Assert.Equal(-(long)Errno.EINVAL, Gup.PinUserPagesFast(p.Mm, a, one, FollFlags.Pin));
        Assert.Contains(m.Dmesg(), l => l.StartsWith("WARNING: GUP: internal flags", StringComparison.Ordinal));
        Assert.Equal(-(long)Errno.EINVAL, Gup.GetUserPagesFast(p.Mm, a, one, FollFlags.Longterm));
        Assert.Contains(m.Dmesg(), l => l.Contains("FOLL_LONGTERM without FOLL_PIN", StringComparison.Ordinal));
        Assert.Equal(1, p.ReadInt32(a) - 999);   // nothing was taken or changed
        Assert.Equal(1, m.Kernel.Memmap.PfnToPage(new Pfn(Pfn(p.PagemapEntry(a)))).Folio.RefCount);
    }

    [Fact]
    public void AWarningIsAKernelBugWhenTheCheckerIsOn()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = MapFilled(p, 1);
        var one = new Page[1];
        Assert.Throws<KernelBugException>(() => Gup.PinUserPagesFast(p.Mm, a, one, FollFlags.Pin));
    }

    /// <summary>hmm-tests.c hmm_gup_test through the gup_test ioctls: GUP_BASIC_TEST and
    /// GUP_FAST_BENCHMARK leave a coherent page on the device, the FOLL_LONGTERM pins bring it to RAM;
    /// device-private pages always come back to RAM.</summary>
    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace, 0)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace, 0)]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace, 2)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace, 2)]
    public void HmmGupTestSequenceThroughGupTestIoctls(DevicePrivateDesign design, int unit)
    {
        using var m = NewMachine(design);
        using var p = m.CreateProcess();
        using var dev = p.OpenDmirror(unit);
        ulong a = MapFilled(p, 4);
        Assert.Equal(new DmirrorResult(Errno.None, 4, 0), dev.MigrateToDevice(a, 4, new byte[4 * PageSize]));
        (GupTestCmd Cmd, FollFlags Flags)[] steps =
        [
            (GupTestCmd.GupBasicTest, FollFlags.None),
            (GupTestCmd.GupFastBenchmark, FollFlags.None),
            (GupTestCmd.PinFastBenchmark, FollFlags.Longterm),
            (GupTestCmd.PinLongtermBenchmark, FollFlags.None),   // gup_test adds FOLL_LONGTERM itself
        ];
        for (int i = 0; i < steps.Length; i++)
        {
            Assert.Equal(Errno.None, p.GupTest(steps[i].Cmd, a + (ulong)i * PageSize, PageSize, 1, FollFlags.Write | steps[i].Flags, out ulong got));
            Assert.Equal(PageSize, got);
        }
        var prot = new byte[4];
        Assert.Equal(Errno.None, dev.Snapshot(a, 4, prot).Error);
        var onDevice = (byte)(DmirrorProt.DevCoherentLocal | DmirrorProt.Write);
        byte expectFirstTwo = unit == 2 ? onDevice : (byte)DmirrorProt.Write;
        Assert.Equal([expectFirstTwo, expectFirstTwo, (byte)DmirrorProt.Write, (byte)DmirrorProt.Write], prot);
        for (int i = 0; i < 4; i++)
            Assert.Equal(1000 + i, p.ReadInt32(a + (ulong)i * PageSize));
    }

    [Fact]
    public void GupTestRefusesMalformedRequests()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = MapFilled(p, 1);
        Assert.Equal(Errno.EINVAL, p.GupTest(GupTestCmd.GupFastBenchmark, a, 0, 1, FollFlags.None, out _));
        Assert.Equal(Errno.EINVAL, p.GupTest(GupTestCmd.GupFastBenchmark, a, 100, 1, FollFlags.None, out _));
        Assert.Equal(Errno.EINVAL, p.GupTest(GupTestCmd.GupFastBenchmark, a, PageSize, 0, FollFlags.None, out _));
        Assert.Equal(Errno.EINVAL, p.GupTest((GupTestCmd)6, a, PageSize, 1, FollFlags.None, out _));
    }

    [Fact]
    public void GupTestReportsHowMuchOfTheRangeItGot()
    {
        using var m = new Machine();
        using var p = m.CreateProcess();
        ulong a = MapFilled(p, 4);
        Assert.Equal(Errno.None, p.Munmap(a + 3 * PageSize, PageSize));
        Assert.Equal(Errno.None, p.GupTest(GupTestCmd.PinFastBenchmark, a, 4 * PageSize, 2, FollFlags.Write, out ulong got));
        Assert.Equal(3 * PageSize, got);
        // Every page was put back.
        for (int i = 0; i < 3; i++)
            Assert.Equal(1, m.Kernel.Memmap.PfnToPage(new Pfn(Pfn(p.PagemapEntry(a + (ulong)i * PageSize)))).Folio.RefCount);
    }
}
