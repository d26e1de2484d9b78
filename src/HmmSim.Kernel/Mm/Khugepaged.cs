namespace HmmSim.Kernel;

/// <summary>mm/khugepaged.c: MADV_COLLAPSE, synchronously collapsing PTE-mapped anonymous ranges
/// into PMD-mapped THPs.</summary>
internal static class Khugepaged
{
    /// <summary>madvise_collapse over [start, end) of one VMA: every aligned 2 MiB range inside it.</summary>
    public static Errno MadviseCollapse(Vma vma, ulong start, ulong end)
    {
        if (!vma.IsAnonymous || vma.IsShared || vma.IsHugetlb || (vma.Flags & VmFlags.NoHugePage) != 0
            || vma.Mm.Kernel.Config.Thp == ThpPolicy.Never)
            return Errno.EINVAL;
        ulong hstart = (start + Arch.PmdSize - 1) & ~(Arch.PmdSize - 1);
        ulong hend = end & ~(Arch.PmdSize - 1);
        var result = Errno.None;
        for (ulong haddr = hstart; haddr < hend; haddr += Arch.PmdSize)
        {
            var err = CollapseHugePage(vma, haddr);
            if (err != Errno.None)
                result = err;
        }
        return result;
    }

    /// <summary>hpage_collapse_scan_pmd + collapse_huge_page for one range: all PTEs none, zero page or
    /// exclusively mapped small anon pages; the data is copied into a fresh THP mapped by the PMD.</summary>
    private static Errno CollapseHugePage(Vma vma, ulong haddr)
    {
        var mm = vma.Mm;
        var kernel = mm.Kernel;
        var arch = mm.Arch;
        if (!mm.PmdTable(haddr, alloc: true, out var pmdTable))
            return Errno.ENOMEM;
        ulong pmd = mm.PmdRef(pmdTable, haddr);
        if (pmd != 0 && !arch.IsTable(pmd))
            return Errno.None;   // already PMD-mapped
        Memory.AnonVmaPrepare(vma);
        if (Memory.AllocUserFolio(kernel, Arch.HpagePmdOrder) is not { } folio)
            return Errno.ENOMEM;
        MmuNotifier.InvalidateRange(mm, MmuNotifyEvent.Clear, haddr, haddr + Arch.PmdSize, null);
        var olds = new List<(Page Page, ulong Addr)>();
        lock (mm.PageTableLock)
        {
            if (pmd != 0)
            {
                var ptes = mm.Table(arch.TablePfn(pmd));
                for (int i = 0; i < Arch.PtrsPerTable; i++)
                {
                    ulong pte = ptes[i];
                    if (pte == 0)
                        continue;
                    if (!arch.PtePresent(pte))
                        return Fail(folio, Errno.EAGAIN);
                    var page = Memory.VmNormalPage(vma, pte);
                    if (page.IsNull)
                        continue;   // the zero page collapses to zeros
                    var f = page.Folio;
                    if (!f.IsAnon || f.IsLarge || f.MapCount != 1 || f.RefCount != 1 || f.IsZoneDevice)
                        return Fail(folio, Errno.EAGAIN);
                    olds.Add((page, haddr + ((ulong)i << Arch.PageShift)));
                }
                foreach (var (page, addr) in olds)
                {
                    folio.Page(MmStruct.PteIndex(addr)).CopyDataFrom(page);
                    Rmap.FolioRemoveRmapPtes(page.Folio, page, 1, vma);
                }
                ptes.Clear();
            }
            Rmap.FolioAddNewAnonRmap(folio, vma, haddr, pmdMapped: true);
            ref ulong slot = ref mm.PmdRef(pmdTable, haddr);
            var oldTable = pmd != 0 ? arch.TablePfn(pmd) : default;
            slot = arch.PmdMkwrite(arch.PmdMkdirty(arch.PmdMkyoung(arch.PfnPmd(folio.Page().ToPfn(), vma.PageProt))));
            if ((vma.Flags & VmFlags.Write) == 0)
                slot = arch.PmdWrprotect(slot);
            if (pmd != 0)
                mm.FreeTable(oldTable);
        }
        foreach (var (page, _) in olds)
            page.Folio.Put();
        Interlocked.Add(ref mm.AnonRss, Arch.PtrsPerTable - olds.Count);
        kernel.VmStat.Inc(VmStatItem.ThpCollapseAlloc);
        return Errno.None;
    }

    private static Errno Fail(Folio folio, Errno err)
    {
        folio.Put();
        return err;
    }
}
