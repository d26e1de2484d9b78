namespace HmmSim.Kernel.Tests.Variants;

/// <summary>RmapMatch: page_vma_mapped_walk compares the number in an entry (a PFN, or a device-private
/// offset) with the folio's range. Both spaces start at 0, so on the default machine a RAM page and a
/// device page can carry the same number; PVMW_DEVICE_PRIVATE keeps them apart, PfnOnly does not.
/// The machine's allocators are steered so the numbers meet (the buddy could have handed out that PFN
/// on its own; steering only makes it certain).</summary>
public class RmapMatchTests
{
    private const ulong PageSize = 4096;

    private static ulong Pte(Process p, ulong addr)
    {
        var mm = p.Mm;
        Assert.True(mm.PmdTable(addr, alloc: false, out var pmdTable));
        ulong pmd = mm.PmdRef(pmdTable, addr);
        return mm.PteRef(mm.Arch.TablePfn(pmd), addr);
    }

    private static ulong DeviceOffset(Machine m, Process p, ulong addr)
    {
        var sw = m.Kernel.Swapops;
        var entry = m.Kernel.Arch.PteToSwpEntry(Pte(p, addr));
        Assert.True(sw.SoftleafIsDevicePrivate(entry));
        return sw.SoftleafToDevicePrivateIndex(entry).Value;
    }

    /// <summary>Makes the buddy's next order-0 allocation return <paramref name="target"/>: every page up
    /// to it is taken and given back, the target last while its buddy stays allocated (so it cannot merge
    /// and heads the order-0 free list). Returns that buddy, for the caller to free.</summary>
    private static Page NextOrderZeroAllocationIs(KernelState kernel, ulong target)
    {
        var held = new List<Page>();
        Page page = default, buddy = default;
        while (page.IsNull || buddy.IsNull)
        {
            var p = kernel.Buddy.Alloc(0, compound: false);
            Assert.False(p.IsNull, $"pfn 0x{target:x} was never handed out");
            ulong pfn = p.ToPfn().Value;
            if (pfn == target)
                page = p;
            else if (pfn == (target ^ 1))
                buddy = p;
            else
                held.Add(p);
        }
        foreach (var p in held)
            kernel.Buddy.FreePages(p, 0);
        kernel.Buddy.FreePages(page, 0);
        return buddy;
    }

    /// <summary>P's page F (PFN n) is mapped by P and its first child C1; the second child C2 replaced its
    /// copy by a page on unit 0 whose device-private offset is also n. All three VMAs share F's anon_vma,
    /// so an rmap walk for F visits C2's device-private entry too.</summary>
    private static (Machine M, Process P, Process C1, Process C2, Dmirror PDev, Dmirror C2Dev, ulong A, ulong N) CoincidingNumbers(HmmSim.RmapMatch match)
    {
        var m = new Machine(new MachineConfig { CheckInvariants = false, Variants = new() { RmapMatch = match } });
        // Learn which offset unit 0 hands out next: it takes a page and gives it back to its free list.
        var w = m.CreateProcess();
        var wdev = w.OpenDmirror(0);
        Assert.Equal(HmmSim.Errno.None, w.Mmap(0, PageSize, HmmSim.Prot.Read | HmmSim.Prot.Write, HmmSim.MapFlags.Private | HmmSim.MapFlags.Anonymous, out ulong wa));
        w.WriteInt32(wa, 9);
        Assert.Equal(HmmSim.Errno.None, wdev.MigrateToDevice(wa, 1, new byte[PageSize]).Error);
        ulong next = DeviceOffset(m, w, wa);
        Assert.Equal(HmmSim.Errno.None, w.Munmap(wa, PageSize));
        wdev.Dispose();
        w.Dispose();

        var p = m.CreateProcess();
        var pdev = p.OpenDmirror(0);
        Assert.Equal(HmmSim.Errno.None, p.Mmap(0, 2 * PageSize, HmmSim.Prot.Read | HmmSim.Prot.Write, HmmSim.MapFlags.Private | HmmSim.MapFlags.Anonymous, out ulong a));
        p.WriteInt32(a + PageSize, 5);   // the page table exists before the steered allocation
        var buddy = NextOrderZeroAllocationIs(m.Kernel, next);
        p.WriteInt32(a, 1);
        m.Kernel.Buddy.FreePages(buddy, 0);
        Assert.Equal(next, m.Kernel.Arch.PtePfn(Pte(p, a)).Value);

        var c1 = p.Fork();
        var c2 = p.Fork();
        c2.WriteInt32(a, 2);   // COW: C2's own page
        var c2dev = c2.OpenDmirror(0);
        Assert.Equal(HmmSim.Errno.None, c2dev.MigrateToDevice(a, 1, new byte[PageSize]).Error);
        Assert.Equal(next, DeviceOffset(m, c2, a));
        return (m, p, c1, c2, pdev, c2dev, a, next);
    }

    [Fact]
    public void WithPvmwDevicePrivateTheWalkForARamFolioSkipsADevicePageOfTheSameNumber()
    {
        var (m, p, c1, c2, pdev, c2dev, a, n) = CoincidingNumbers(HmmSim.RmapMatch.PvmwDevicePrivate);
        using (m)
        {
            // P migrates F: F is still mapped by C1, so migrate_vma_unmap runs try_to_migrate(F).
            Assert.Equal(HmmSim.Errno.None, pdev.MigrateToDevice(a, 1, new byte[PageSize]).Error);
            Assert.Equal(n, DeviceOffset(m, c2, a));
            Assert.Equal(1, p.ReadInt32(a));
            Assert.Equal(1, c1.ReadInt32(a));
            Assert.Equal(2, c2.ReadInt32(a));
            m.CheckInvariants();
            pdev.Dispose();
            c2dev.Dispose();
        }
    }

    [Fact]
    public void PfnOnlyTakesTheOtherProcesssDevicePageForAMappingOfTheRamFolio()
    {
        var (m, _, _, c2, pdev, _, a, n) = CoincidingNumbers(HmmSim.RmapMatch.PfnOnly);
        // try_to_migrate_one matches C2's device-private entry (offset n) against F (PFN n) and replaces
        // it by a migration entry for F, dropping one more of F's mappings than exist.
        var e = Assert.Throws<KernelBugException>(() => pdev.MigrateToDevice(a, 1, new byte[PageSize]));
        Assert.Contains("mapcount", e.Message, StringComparison.Ordinal);
        // C2's mapping of its own device page is gone: its PTE now holds F's migration entry.
        var sw = m.Kernel.Swapops;
        var entry = m.Kernel.Arch.PteToSwpEntry(Pte(c2, a));
        Assert.True(sw.SoftleafIsMigration(entry));
        Assert.False(sw.SoftleafIsMigrationDevicePrivate(entry));
        Assert.Equal(n, entry.Offset & sw.SwpPfnMask);
    }
}
