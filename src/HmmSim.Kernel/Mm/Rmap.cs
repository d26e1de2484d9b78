namespace HmmSim.Kernel;

/// <summary>mm/rmap.c: mapcount bookkeeping when folios are mapped and unmapped, and the reverse
/// walk from a folio to every (vma, address) that maps it.</summary>
internal static partial class Rmap
{
    /// <summary>folio_add_new_anon_rmap: a fresh anon folio mapped once, exclusively, at <paramref name="address"/>
    /// (the folio's first address). A large folio is mapped by one PMD here (mapped by PTEs, use the pte variant after).</summary>
    public static void FolioAddNewAnonRmap(Folio folio, Vma vma, ulong address, bool pmdMapped)
    {
        var anonVma = vma.AnonVma ?? ThrowHelper.KernelBug<AnonVma>($"folio_add_new_anon_rmap: {vma} has no anon_vma");
        var kernel = vma.Mm.Kernel;
        // Its VM_WARN_ON_FOLIO(folio_test_hugetlb) is not transcribed: the model's hugetlb faults map
        // through here (the kernel has hugetlb_add_new_anon_rmap). The model's new anon folios are always RMAP_EXCLUSIVE, so "!exclusive && !folio_test_locked" cannot hold.
        if (address < vma.Start || address + folio.Size > vma.End)
            VmWarn.Warn(kernel, $"VM_WARN_ON_ONCE(address < vm_start || address + nr pages > vm_end): folio_add_new_anon_rmap: {folio} at 0x{address:x} in {vma}");
        folio.SetFlag(PageFlags.Anon | PageFlags.SwapBacked);
        folio.Mapping = anonVma.Handle;
        folio.PgIndex = vma.LinearPageIndex(address);
        for (int i = 0; i < folio.NrPages; i++)
            folio.Page(i).DescFor(PageField.Flags, true, PageFlags.AnonExclusive).Flags |= (uint)PageFlags.AnonExclusive;
        if (pmdMapped)
            AddPmd(folio, kernel, anon: true);
        else
            AddPtes(folio, folio.Page(), folio.NrPages, kernel, anon: true);
    }

    /// <summary>folio_add_anon_rmap_ptes: <paramref name="nr"/> more PTE mappings of pages of an anon folio.</summary>
    public static void FolioAddAnonRmapPtes(Folio folio, Page page, int nr, Vma vma, bool exclusive)
    {
        if (!folio.IsAnon)
            ThrowHelper.KernelBug($"folio_add_anon_rmap_ptes on non-anon {folio}");
        AddPtes(folio, page, nr, vma.Mm.Kernel, anon: true);
        if (exclusive)
            for (int i = 0; i < nr; i++)
                page.Nth(i).DescFor(PageField.Flags, true, PageFlags.AnonExclusive).Flags |= (uint)PageFlags.AnonExclusive;
        CheckAnonExclusive(vma.Mm.Kernel, folio, page, nr);
    }

    /// <summary>__folio_add_anon_rmap's VM_WARN_ON_FOLIOs: a page marked exclusive to one mm is mapped
    /// exactly once (the model's mapcounts start at 0 where the kernel's start at -1, so the kernel's
    /// "_mapcount &gt; 0" is "MapCount &gt; 1" here).</summary>
    private static void CheckAnonExclusive(KernelState kernel, Folio folio, Page page, int nr)
    {
        if (!folio.IsLarge)
        {
            if (page.AnonExclusive && page.MapCount > 1)
                VmWarn.Warn(kernel, $"VM_WARN_ON_FOLIO(!folio_test_large && PageAnonExclusive && _mapcount > 0): __folio_add_anon_rmap: {folio} is exclusive but mapped {page.MapCount} times");
            return;
        }
        int entire = folio.EntireMapCount;
        for (int i = 0; i < nr; i++)
        {
            var cur = page.Nth(i);
            if (!cur.AnonExclusive)
                continue;
            if (entire > 1)
                VmWarn.Warn(kernel, $"VM_WARN_ON_FOLIO(folio_entire_mapcount > 1 && PageAnonExclusive): __folio_add_anon_rmap: {cur} of {folio} is exclusive but the folio is PMD-mapped {entire} times");
            if (cur.MapCount > 1)
                VmWarn.Warn(kernel, $"VM_WARN_ON_FOLIO(_mapcount > 0 && PageAnonExclusive): __folio_add_anon_rmap: {cur} of {folio} is exclusive but mapped {cur.MapCount} times");
        }
    }

    public static void FolioAddAnonRmapPmd(Folio folio, Vma vma, bool exclusive)
    {
        AddPmd(folio, vma.Mm.Kernel, anon: true);
        if (exclusive)
            for (int i = 0; i < folio.NrPages; i++)
                folio.Page(i).DescFor(PageField.Flags, true, PageFlags.AnonExclusive).Flags |= (uint)PageFlags.AnonExclusive;
        CheckAnonExclusive(vma.Mm.Kernel, folio, folio.Page(), folio.NrPages);
    }

    /// <summary>folio_add_file_rmap_ptes (__folio_add_file_rmap: never an anon folio).</summary>
    public static void FolioAddFileRmapPtes(Folio folio, Page page, int nr, Vma vma)
    {
        CheckNotAnon(vma.Mm.Kernel, folio);
        AddPtes(folio, page, nr, vma.Mm.Kernel, anon: false);
    }

    public static void FolioAddFileRmapPmd(Folio folio, Vma vma)
    {
        CheckNotAnon(vma.Mm.Kernel, folio);
        AddPmd(folio, vma.Mm.Kernel, anon: false);
    }

    private static void CheckNotAnon(KernelState kernel, Folio folio)
    {
        if (folio.IsAnon)
            VmWarn.Warn(kernel, $"VM_WARN_ON_FOLIO(folio_test_anon): __folio_add_file_rmap: {folio}");
    }

    /// <summary>__folio_rmap_sanity_checks (include/linux/rmap.h), run by every add, dup and remove.
    /// Hugetlb folios come through here in the model (the kernel has hugetlb_add_anon_rmap etc.),
    /// so its VM_WARN_ON_FOLIO(folio_test_hugetlb) is not transcribed; nor is the anon_vma refcount
    /// check (the model's anon_vma has no refcount).</summary>
    private static void FolioRmapSanityChecks(KernelState kernel, Folio folio, Page page, int nr, bool pmdLevel, string caller)
    {
        if (folio.IsZero)
            VmWarn.Warn(kernel, $"VM_WARN_ON_FOLIO(is_zero_folio): __folio_rmap_sanity_checks from {caller}: {folio}");
        if (nr <= 0)
        {
            VmWarn.Warn(kernel, $"VM_WARN_ON_ONCE(nr_pages <= 0): __folio_rmap_sanity_checks from {caller}: {nr} pages of {folio}");
            return;
        }
        if (page.Folio != folio)
            VmWarn.Warn(kernel, $"VM_WARN_ON_FOLIO(page_folio(page) != folio): __folio_rmap_sanity_checks from {caller}: {page} is not in {folio}");
        else if (page.Nth(nr - 1).Folio != folio)
            VmWarn.Warn(kernel, $"VM_WARN_ON_FOLIO(page_folio(page + nr_pages - 1) != folio): __folio_rmap_sanity_checks from {caller}: {nr} pages from {page} run past {folio}");
        if (pmdLevel)
        {
            if (folio.NrPages != Arch.PtrsPerTable)
                VmWarn.Warn(kernel, $"VM_WARN_ON_FOLIO(folio_nr_pages != HPAGE_PMD_NR): __folio_rmap_sanity_checks from {caller}: {folio}");
            if (nr != Arch.PtrsPerTable)
                VmWarn.Warn(kernel, $"VM_WARN_ON_FOLIO(nr_pages != HPAGE_PMD_NR): __folio_rmap_sanity_checks from {caller}: {nr} pages of {folio}");
        }
    }

    /// <summary>folio_dup_file_rmap_ptes / folio_try_dup_anon_rmap_ptes (fork): same bookkeeping as adding.</summary>
    public static void FolioDupRmapPtes(Folio folio, Page page, int nr, KernelState kernel) => AddPtes(folio, page, nr, kernel, folio.IsAnon);
    public static void FolioDupRmapPmd(Folio folio, KernelState kernel) => AddPmd(folio, kernel, folio.IsAnon);

    public static void FolioRemoveRmapPtes(Folio folio, Page page, int nr, Vma vma)
    {
        var kernel = vma.Mm.Kernel;
        FolioRmapSanityChecks(kernel, folio, page, nr, pmdLevel: false, "__folio_remove_rmap");
        bool anon = folio.IsAnon;
        int nowUnmapped = 0;
        for (int i = 0; i < nr; i++)
        {
            int mc = Interlocked.Decrement(ref page.Nth(i).DescFor(PageField.MapCount, true).MapCount);
            if (mc < 0)
                ThrowHelper.KernelBug($"folio_remove_rmap_ptes: mapcount of {page.Nth(i)} went negative in {vma}");
            if (mc == 0 && (!folio.IsLarge || folio.EntireMapCount == 0))
                nowUnmapped++;
        }
        if (folio.IsLarge)
            Interlocked.Add(ref folio.TailFor(1, PageField.LargeMapcount, true).RefCount, -nr);
        Account(kernel, folio, anon, -nowUnmapped);
    }

    public static void FolioRemoveRmapPmd(Folio folio, Vma vma)
    {
        var kernel = vma.Mm.Kernel;
        FolioRmapSanityChecks(kernel, folio, folio.Page(), Arch.PtrsPerTable, pmdLevel: true, "__folio_remove_rmap");
        int entire = (int)Interlocked.Decrement(ref folio.TailFor(1, PageField.EntireMapcount, true).Index);
        Interlocked.Decrement(ref folio.TailFor(1, PageField.LargeMapcount, true).RefCount);
        if (entire < 0)
            ThrowHelper.KernelBug($"folio_remove_rmap_pmd: entire mapcount of {folio} went negative in {vma}");
        if (entire == 0)
        {
            int unmapped = 0;
            for (int i = 0; i < folio.NrPages; i++)
                if (folio.Page(i).DescFor(PageField.MapCount, false).MapCount == 0)
                    unmapped++;
            Account(kernel, folio, folio.IsAnon, -unmapped);
            if (folio.IsAnon && !folio.IsHugetlb)
                kernel.VmStat.Add(VmStatItem.NrAnonTransparentHugepages, -1);
        }
    }

    private static void AddPtes(Folio folio, Page page, int nr, KernelState kernel, bool anon)
    {
        FolioRmapSanityChecks(kernel, folio, page, nr, pmdLevel: false, "__folio_add_rmap");
        int nowMapped = 0;
        for (int i = 0; i < nr; i++)
        {
            if (Interlocked.Increment(ref page.Nth(i).DescFor(PageField.MapCount, true).MapCount) == 1 && (!folio.IsLarge || folio.EntireMapCount == 0))
                nowMapped++;
        }
        if (folio.IsLarge)
            Interlocked.Add(ref folio.TailFor(1, PageField.LargeMapcount, true).RefCount, nr);
        Account(kernel, folio, anon, nowMapped);
    }

    private static void AddPmd(Folio folio, KernelState kernel, bool anon)
    {
        if (!folio.IsLarge)
            ThrowHelper.KernelBug($"PMD-mapping small {folio}");
        FolioRmapSanityChecks(kernel, folio, folio.Page(), Arch.PtrsPerTable, pmdLevel: true, "__folio_add_rmap");
        int entire = (int)Interlocked.Increment(ref folio.TailFor(1, PageField.EntireMapcount, true).Index);
        Interlocked.Increment(ref folio.TailFor(1, PageField.LargeMapcount, true).RefCount);
        if (entire == 1)
        {
            int mapped = 0;
            for (int i = 0; i < folio.NrPages; i++)
                if (folio.Page(i).DescFor(PageField.MapCount, false).MapCount == 0)
                    mapped++;
            Account(kernel, folio, anon, mapped);
            if (anon && !folio.IsHugetlb)
                kernel.VmStat.Inc(VmStatItem.NrAnonTransparentHugepages);
        }
    }

    private static void Account(KernelState kernel, Folio folio, bool anon, int pages)
    {
        if (pages == 0 || folio.IsHugetlb || folio.IsZoneDevice && folio.IsDevicePrivate)
            return;
        kernel.VmStat.Add(anon ? VmStatItem.NrAnonPages : VmStatItem.NrMapped, pages);
    }

    /// <summary>One place a folio is mapped: the VMA and the address of the folio's first page there
    /// (which may lie outside the VMA for a large folio that is only partly mapped).</summary>
    public readonly record struct Mapping(Vma Vma, ulong Address);

    /// <summary>rmap_walk: every VMA that may map the folio, with the address its index has there.
    /// The caller checks the page tables (page_vma_mapped_walk) for an actual mapping.</summary>
    public static List<Mapping> Walk(Folio folio)
    {
        var result = new List<Mapping>();
        Walk(folio, result);
        return result;
    }

    /// <summary>rmap_walk into a caller-owned list (cleared first), so a migration walks without allocating per page.</summary>
    public static void Walk(Folio folio, List<Mapping> result)
    {
        var owner = Owner(folio);
        var rmapLock = WalkLock(owner);
        rmapLock?.Enter();
        try
        {
            WalkLocked(owner, folio, result);
        }
        finally
        {
            rmapLock?.Exit();
        }
    }

    internal static void AddIfOverlaps(List<Mapping> result, Vma vma, ulong index, ulong span)
    {
        // The folio's first page's address in this VMA's linear layout, even if it falls outside.
        long delta = (long)(index - vma.PgOff) << Arch.PageShift;
        ulong first = (ulong)((long)vma.Start + delta);
        if (first < vma.End && first + span > vma.Start)
            result.Add(new Mapping(vma, first));
    }
}
