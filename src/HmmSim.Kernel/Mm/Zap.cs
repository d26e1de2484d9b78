namespace HmmSim.Kernel;

/// <summary>mm/memory.c unmap_page_range → zap_pmd_range → zap_pte_range: tear down the mappings of
/// a range, dropping rmap and references. Tables stay; free_pgtables frees them afterwards.</summary>
internal static class Zap
{
    /// <summary>Zaps [start, end) of one VMA. The caller holds mmap_lock (write for munmap/exit,
    /// read for MADV_DONTNEED) and has already sent the MMU notifier.</summary>
    public static void ZapRange(Vma vma, ulong start, ulong end)
    {
        var mm = vma.Mm;
        var arch = mm.Arch;
        foreach (var (addr, next, pmdTable, pmd) in new PmdWalk(mm, start, end))
        {
            if (!arch.IsTable(pmd))
            {
                if (vma.IsHugetlb)
                {
                    Hugetlb.ZapHugePmd(vma, pmdTable, addr & ~(Arch.PmdSize - 1));
                    continue;
                }
                if ((addr & (Arch.PmdSize - 1)) == 0 && next - addr == Arch.PmdSize)
                {
                    HugeMemory.ZapHugePmd(vma, pmdTable, addr);
                    continue;
                }
                HugeMemory.SplitHugePmd(vma, pmdTable, addr & ~(Arch.PmdSize - 1));
            }
            if (mm.PteTable(pmdTable, addr, alloc: false, out var pteTable))
                ZapPteRange(vma, pteTable, addr, next);
        }
    }

    private static void ZapPteRange(Vma vma, Pfn pteTable, ulong start, ulong end)
    {
        var mm = vma.Mm;
        var arch = mm.Arch;
        for (ulong addr = start; addr < end; addr += Arch.PageSize)
        {
            Page page;
            ulong pte;
            lock (mm.PageTableLock)
            {
                ref ulong slot = ref mm.PteRef(pteTable, addr);
                pte = slot;
                if (pte == 0)
                    continue;
                if (!arch.PtePresent(pte))
                {
                    slot = 0;
                    SwapFaults.ZapNonPresentPte(vma, addr, pte);
                    continue;
                }
                page = Memory.VmNormalPage(vma, pte);
                slot = 0;
                if (page.IsNull)
                    continue;
                var folio = page.Folio;
                if (arch.PteDirty(pte) && !folio.IsAnon)
                    folio.SetFlag(PageFlags.Dirty);
                Memory.DecRss(mm, folio);
                Rmap.FolioRemoveRmapPtes(folio, page, 1, vma);
            }
            page.Folio.Put();
        }
    }
}
