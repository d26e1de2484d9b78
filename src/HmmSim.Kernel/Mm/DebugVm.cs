using System.Runtime.InteropServices;

namespace HmmSim.Kernel;

/// <summary>CONFIG_DEBUG_VM: after a CPU access, only the range it touched (<see cref="CheckRange"/>);
/// for the whole machine (every other operation, teardown, on demand): recounts every mapping from the page tables and
/// checks it against struct page (mapcounts, refcounts, rmap), checks that nothing mapped is free
/// and that teardown gives every page back. A finding throws KernelBugException naming the address,
/// the page and what disagreed.</summary>
internal static class DebugVm
{
    /// <summary>What a walk found. <paramref name="whole"/>: a walk of every mm, whose counts go straight
    /// to dictionaries.</summary>
    private sealed class Counts(bool whole = false)
    {
        public readonly CountMap<Page> PteMaps = new(whole);
        public readonly CountMap<Folio> PmdMaps = new(whole);
        public readonly CountMap<Folio> Total = new(whole);
        /// <summary>Scratch for the rmap walk of each mapping found.</summary>
        public readonly List<Rmap.Mapping> Rmap = [];

        public void Clear()
        {
            PteMaps.Clear();
            PmdMaps.Clear();
            Total.Clear();
        }
    }

    public static void Check(KernelState kernel, MmStruct[] mms)
    {
        var counts = new Counts(whole: true);
        foreach (var mm in mms)
        {
            if (mm.Exited)
                continue;
            CheckVmas(mm);
            WalkMm(kernel, mm, counts);
        }
        foreach (var (folio, total) in counts.Total)
            CheckFolio(kernel, folio, total, counts);
        ScanMemmap(kernel, counts);
    }

    /// <summary>The check after one operation on <paramref name="length"/> bytes at <paramref name="start"/> of
    /// <paramref name="mm"/>: DEBUG_VM's checks are local to what an operation touched, so this walks only
    /// the tables of that range, with every entry checked where it lies (VMA, rmap, write permission,
    /// device-private naming), and each folio met checked against what the range alone proves: it is
    /// live, its mapcounts are at least the mappings found, its refcount covers its mapcount. The exact
    /// recount over every mm and the memmap scan are <see cref="Check"/>'s, run at teardown and on demand.</summary>
    public static void CheckRange(KernelState kernel, MmStruct mm, ulong start, ulong length)
    {
        // The user pointer as the access used it: untagged_addr, and nothing past TASK_SIZE.
        start = mm.Arch.UntaggedAddr(start);
        ulong end = length > mm.Arch.TaskSize - Math.Min(start, mm.Arch.TaskSize) ? mm.Arch.TaskSize : start + length;
        if (mm.Exited || end <= start)
            return;
        // One set of counts per thread, reused: a per-access check must not cost three dictionaries.
        var counts = _localCounts ??= new Counts();
        try
        {
            CheckRangeInto(kernel, mm, start, end, counts);
        }
        finally
        {
            counts.Clear();
        }
    }

    [ThreadStatic]
    private static Counts? _localCounts;

    private static void CheckRangeInto(KernelState kernel, MmStruct mm, ulong start, ulong end, Counts counts)
    {
        var ops = new DebugVmWalkOps(kernel, counts);
        // The pages the access touched (a huge PMD among them is checked as a whole, from its own start).
        Pagewalk.WalkPageRangeDebug(mm, start & Arch.PageMask, (end + Arch.PageSize - 1) & Arch.PageMask, ref ops);
        foreach (var (folio, total) in counts.Total)
        {
            if (folio.Test(PageFlags.Buddy) || folio.RefCount <= 0)
                ThrowHelper.KernelBug($"DEBUG_VM: {folio} is mapped {total} times but is free (refcount {folio.RefCount}, flags {folio.Page().Flags})");
            int entire = counts.PmdMaps.TryGetValue(folio, out int e) ? e : 0;
            if (folio.EntireMapCount < entire)
                ThrowHelper.KernelBug($"DEBUG_VM: {folio} entire mapcount {folio.EntireMapCount}, but {entire} PMDs map it");
            if (folio.MapCount < total)
                ThrowHelper.KernelBug($"DEBUG_VM: {folio} folio_mapcount {folio.MapCount}, but it is mapped at least {total} times");
            if (folio.RefCount < folio.MapCount)
                ThrowHelper.KernelBug($"DEBUG_VM: {folio} refcount {folio.RefCount} is below its folio_mapcount {folio.MapCount}");
        }
        foreach (var (page, n) in counts.PteMaps)
            if (page.MapCount < n)
                ThrowHelper.KernelBug($"DEBUG_VM: {page} mapcount {page.MapCount}, but {n} PTEs map it");
    }

    private static void CheckVmas(MmStruct mm)
    {
        ulong prevEnd = 0;
        foreach (var v in mm.Vmas.All)
        {
            if (v.Start >= v.End || (v.Start | v.End) % Arch.PageSize != 0 || v.Start < prevEnd || v.End > mm.Arch.TaskSize)
                ThrowHelper.KernelBug($"DEBUG_VM: bad VMA {v} (previous ended at 0x{prevEnd:x})");
            if (v.AnonVma is not null && !v.AnonVmaChain.Contains(v.AnonVma))
                ThrowHelper.KernelBug($"DEBUG_VM: {v} is not on its own anon_vma's chain");
            prevEnd = v.End;
        }
    }

    /// <summary>Every table of the mm, as ptdump walks it: walk_page_range_debug over the whole user
    /// half and beyond, ignoring VMAs, with each entry checked where it lies.</summary>
    private static void WalkMm(KernelState kernel, MmStruct mm, Counts counts)
    {
        CheckTablePage(kernel, mm.Pgd, "pgd");
        var ops = new DebugVmWalkOps(kernel, counts);
        Pagewalk.WalkPageRangeDebug(mm, 0, Arch.PtrsPerTable * Arch.PgdirSize, ref ops);
    }

    private readonly struct DebugVmWalkOps(KernelState kernel, Counts counts) : IMmWalkOps
    {
        public static MmWalkHandlers Handlers =>
            MmWalkHandlers.PgdEntry | MmWalkHandlers.PudEntry | MmWalkHandlers.PmdEntry | MmWalkHandlers.PteEntry;

        public int PgdEntry(ref ulong pgd, ulong addr, ulong next, ref MmWalk walk)
        {
            var arch = walk.Mm.Arch;
            if (!arch.IsTable(pgd))
                ThrowHelper.KernelBug($"DEBUG_VM: pgd entry 0x{pgd:x} at 0x{addr:x} is not a table");
            CheckTablePage(kernel, arch.TablePfn(pgd), "pud");
            return 0;
        }

        public int PudEntry(ref ulong pud, ulong addr, ulong next, ref MmWalk walk)
        {
            var arch = walk.Mm.Arch;
            if (!arch.IsTable(pud))
                ThrowHelper.KernelBug($"DEBUG_VM: pud entry 0x{pud:x} at 0x{addr:x} is not a table (no PUD leaves are made)");
            CheckTablePage(kernel, arch.TablePfn(pud), "pmd");
            return 0;
        }

        public int PmdEntry(ref ulong pmd, ulong addr, ulong next, ref MmWalk walk)
        {
            var arch = walk.Mm.Arch;
            if (arch.IsTable(pmd))
            {
                CheckTablePage(kernel, arch.TablePfn(pmd), "pte");
                return 0;
            }
            CheckPmdLeaf(kernel, walk.Mm, addr & ~(Arch.PmdSize - 1), pmd, counts);
            walk.Action = PageWalkAction.Continue;
            return 0;
        }

        public int PteEntry(ref ulong pte, ulong addr, ulong next, ref MmWalk walk)
        {
            if (pte != 0)
                CheckPte(kernel, walk.Mm, addr, pte, counts);
            return 0;
        }

        public int PteHole(ulong addr, ulong next, int depth, ref MmWalk walk) => 0;
        public int HugetlbEntry(ref ulong pte, ulong hmask, ulong addr, ulong next, ref MmWalk walk) => 0;
        public int TestWalk(ulong start, ulong end, ref MmWalk walk) => 0;
    }

    private static void CheckTablePage(KernelState kernel, Pfn table, string level)
    {
        var page = kernel.Memmap.PfnToPage(table);
        if (!page.Test(PageFlags.Table) || page.Folio.RefCount <= 0)
            ThrowHelper.KernelBug($"DEBUG_VM: {level} table {page} is not a live page-table page (flags {page.Flags}, refcount {page.Folio.RefCount})");
    }

    private static Vma VmaFor(MmStruct mm, ulong addr, ulong entry, string what)
    {
        return mm.Vmas.Lookup(addr) ?? ThrowHelper.KernelBug<Vma>($"DEBUG_VM: {what} 0x{entry:x16} at 0x{addr:x} lies outside every VMA");
    }

    private static void CheckPte(KernelState kernel, MmStruct mm, ulong addr, ulong pte, Counts counts)
    {
        var arch = mm.Arch;
        var vma = VmaFor(mm, addr, pte, "pte");
        if (!arch.PtePresent(pte))
        {
            CheckNonPresent(kernel, vma, addr, kernel.Arch.PteToSwpEntry(pte), pmdLevel: false, counts);
            return;
        }
        var pfn = arch.PtePfn(pte);
        if (arch.PteSpecial(pte))
        {
            if (pfn != kernel.ZeroPfn)
                ThrowHelper.KernelBug($"DEBUG_VM: special pte at 0x{addr:x} maps {pfn}, which is not the zero page");
            return;
        }
        if (pfn == kernel.ZeroPfn)
            ThrowHelper.KernelBug($"DEBUG_VM: the zero page is mapped at 0x{addr:x} by a normal (non-special) pte");
        var page = kernel.Memmap.PfnToPage(pfn);
        var folio = page.Folio;
        if (arch.PteWrite(pte) && (vma.Flags & VmFlags.Write) == 0)
            ThrowHelper.KernelBug($"DEBUG_VM: writable pte at 0x{addr:x} in {vma} that is not VM_WRITE");
        if (arch.PteWrite(pte) && folio.IsAnon && !page.AnonExclusive)
            ThrowHelper.KernelBug($"DEBUG_VM: writable pte at 0x{addr:x} maps anon {page} that is not PageAnonExclusive");
        Bump(counts.PteMaps, page);
        Bump(counts.Total, folio);
        CheckRmap(folio, vma, addr - ((ulong)(page.Index - folio.Index) << Arch.PageShift), addr, counts.Rmap);
    }

    private static void CheckPmdLeaf(KernelState kernel, MmStruct mm, ulong addr, ulong pmd, Counts counts)
    {
        var arch = mm.Arch;
        var vma = VmaFor(mm, addr, pmd, "huge pmd");
        if (addr < vma.Start || addr + Arch.PmdSize > vma.End)
            ThrowHelper.KernelBug($"DEBUG_VM: huge pmd at 0x{addr:x} is not wholly inside {vma}");
        if (!arch.PmdPresent(pmd))
        {
            CheckNonPresent(kernel, vma, addr, arch.PmdToSwpEntry(pmd), pmdLevel: true, counts);
            return;
        }
        if (HugeMemory.IsHugeZeroPmd(kernel, pmd))
            return;
        var page = kernel.Memmap.PfnToPage(arch.PmdPfn(pmd));
        var folio = page.Folio;
        if (folio.Page() != page || folio.Order != Arch.HpagePmdOrder)
            ThrowHelper.KernelBug($"DEBUG_VM: huge pmd at 0x{addr:x} maps {page}, which is not the head of an order-9 folio ({folio})");
        Bump(counts.PmdMaps, folio);
        Bump(counts.Total, folio);
        CheckRmap(folio, vma, addr, addr, counts.Rmap);
    }

    private static void CheckRmap(Folio folio, Vma vma, ulong folioAddr, ulong addr, List<Rmap.Mapping> found)
    {
        if (folio.Mapping == 0 && !folio.IsAnon)
            return;   // a vm_insert_page'd kernel page: no address_space, nothing for rmap to find
        Rmap.Walk(folio, found);
        foreach (var m in found)
            if (ReferenceEquals(m.Vma, vma) && m.Address == folioAddr)
                return;
        ThrowHelper.KernelBug($"DEBUG_VM: rmap of {folio} does not find its mapping at 0x{addr:x} in {vma} (mapping handle {folio.Mapping}, index 0x{folio.PgIndex:x})");
    }

    private static void Bump<T>(CountMap<T> d, T key) where T : IEquatable<T> => d.Bump(key);

    /// <summary>How many times each page or folio was found mapped. A CPU access's local check finds one or
    /// two, so the first few are kept in a short array searched in order (hashing three dictionaries and
    /// clearing them cost more than the walk itself); past that they move to a dictionary, as the full
    /// walk needs.</summary>
    private sealed class CountMap<T>(bool large) where T : IEquatable<T>
    {
        private const int LinearMax = 8;
        private readonly T[] _keys = new T[LinearMax];
        private readonly int[] _values = new int[LinearMax];
        private int _count;
        private Dictionary<T, int>? _large = large ? [] : null;
        private bool _isLarge = large;

        public void Bump(T key)
        {
            if (!_isLarge)
            {
                for (int i = 0; i < _count; i++)
                {
                    if (_keys[i].Equals(key))
                    {
                        _values[i]++;
                        return;
                    }
                }
                if (_count < LinearMax)
                {
                    _keys[_count] = key;
                    _values[_count++] = 1;
                    return;
                }
                _large ??= [];
                for (int i = 0; i < _count; i++)
                    _large[_keys[i]] = _values[i];
                ClearShort();
                _isLarge = true;
            }
            CollectionsMarshal.GetValueRefOrAddDefault(_large!, key, out _)++;
        }

        public bool TryGetValue(T key, out int value)
        {
            if (_isLarge)
                return _large!.TryGetValue(key, out value);
            for (int i = 0; i < _count; i++)
            {
                if (_keys[i].Equals(key))
                {
                    value = _values[i];
                    return true;
                }
            }
            value = 0;
            return false;
        }

        public bool ContainsKey(T key) => TryGetValue(key, out _);

        public void Clear()
        {
            ClearShort();
            if (_isLarge)
                _large!.Clear();
            _isLarge = false;
        }

        // Page and Folio hold their section: cleared so a check does not keep a removed memmap alive.
        private void ClearShort()
        {
            Array.Clear(_keys, 0, _count);
            _count = 0;
        }

        public Enumerator GetEnumerator() => new(this);

        public struct Enumerator
        {
            private readonly CountMap<T> _map;
            private Dictionary<T, int>.Enumerator _large;
            private int _i;

            internal Enumerator(CountMap<T> map)
            {
                _map = map;
                _i = -1;
                if (map._isLarge)
                    _large = map._large!.GetEnumerator();
            }

            public readonly (T Key, int Value) Current =>
                _map._isLarge ? (_large.Current.Key, _large.Current.Value) : (_map._keys[_i], _map._values[_i]);

            public bool MoveNext() => _map._isLarge ? _large.MoveNext() : ++_i < _map._count;
        }
    }

    private static void CheckFolio(KernelState kernel, Folio folio, int total, Counts counts)
    {
        if (folio.Test(PageFlags.Buddy) || folio.RefCount <= 0)
            ThrowHelper.KernelBug($"DEBUG_VM: {folio} is mapped {total} times but is free (refcount {folio.RefCount}, flags {folio.Page().Flags})");
        int entire = counts.PmdMaps.TryGetValue(folio, out int e) ? e : 0;
        if (folio.EntireMapCount != entire)
            ThrowHelper.KernelBug($"DEBUG_VM: {folio} entire mapcount {folio.EntireMapCount}, but {entire} PMDs map it");
        for (int i = 0; i < folio.NrPages; i++)
        {
            var p = folio.Page(i);
            int want = counts.PteMaps.TryGetValue(p, out int c) ? c : 0;
            if (p.MapCount != want)
                ThrowHelper.KernelBug($"DEBUG_VM: {p} mapcount {p.MapCount}, but {want} PTEs map it");
        }
        if (folio.MapCount != total)
            ThrowHelper.KernelBug($"DEBUG_VM: {folio} folio_mapcount {folio.MapCount}, but it is mapped {total} times");
        int pins = folio.IsLarge ? folio.PinCount : 0;
        int cacheRef = !folio.IsAnon && kernel.Memmap.Mappings.Get(folio.Mapping) is AddressSpace ? 1 : 0;
        if (folio.RefCount < total + pins + cacheRef)
            ThrowHelper.KernelBug($"DEBUG_VM: {folio} refcount {folio.RefCount} is below its {total} mappings + {pins} pins + {cacheRef} page-cache reference");
    }

    /// <summary>Every page that claims mappings was found by the walk; free pages claim nothing.</summary>
    private static void ScanMemmap(KernelState kernel, Counts counts)
    {
        bool redesign = kernel.Config.DevicePrivateDesign == DevicePrivateDesign.DeviceAddressSpace;
        foreach (var sec in kernel.Memmap.Sections())
        {
            // The redesign's rule: device-private pages live only in the device-private address space,
            // so no physical memmap section may hold one (pfn_to_page could then reach it).
            // The memmap and the allocator (mtree_load) must agree on who owns each device-private offset.
            if (sec.InDevicePrivateSpace && sec.SubsectionPgmap is { } owned)
            {
                for (int sub = 0; sub < owned.Length; sub++)
                {
                    ulong first = sec.FirstNumber + ((ulong)sub << MemSection.SubsectionShift);
                    if (owned[sub] is { } pg && kernel.DevicePrivateSpace?.Load(new DevicePrivateIndex(first)) != pg)
                        ThrowHelper.KernelBug($"DEBUG_VM: device-private offset 0x{first:x} belongs to {pg} in the memmap but not in the device-private address space");
                }
            }
            if (redesign && !sec.InDevicePrivateSpace && sec.SubsectionPgmap is { } pgmaps)
                foreach (var pg in pgmaps)
                    if (pg?.Type == MemoryType.DevicePrivate)
                        ThrowHelper.KernelBug($"DEBUG_VM: physical memmap section at pfn 0x{sec.FirstNumber:x} holds device-private pages of {pg}; in the redesign they have no PFN");
            var pages = sec.Pages;
            for (int i = 0; i < pages.Length; i++)
            {
                ref var d = ref pages[i];
                if (d.MapCount == 0 && (d.Flags & (uint)PageFlags.Buddy) == 0)
                    continue;
                var page = new Page(sec, i);
                if ((d.Flags & (uint)PageFlags.Buddy) != 0)
                {
                    if (d.MapCount != 0 || d.RefCount != 0)
                        ThrowHelper.KernelBug($"DEBUG_VM: free {page} has mapcount {d.MapCount}, refcount {d.RefCount}");
                    continue;
                }
                if (!counts.PteMaps.ContainsKey(page))
                    ThrowHelper.KernelBug($"DEBUG_VM: {page} has mapcount {d.MapCount} but no page table maps it");
            }
        }
    }

    /// <summary>After every process has exited: every page is back in the buddy except what the kernel
    /// keeps for itself (zero pages, the hugetlb pool, open files' page cache, device memory).</summary>
    public static void CheckTeardown(KernelState kernel, long bootFreePages)
    {
        var vs = kernel.VmStat;
        foreach (var item in new[] { VmStatItem.NrAnonPages, VmStatItem.NrMapped, VmStatItem.NrPageTablePages, VmStatItem.NrAnonTransparentHugepages })
            if (vs[item] != 0)
                ThrowHelper.KernelBug($"DEBUG_VM: after every process exited, {HmmSim.Kernel.VmStat.Name(item)} is {vs[item]}, not 0");
        long kept = vs[VmStatItem.NrShmem] + (kernel.HugeZeroPfn.Value != ulong.MaxValue ? Arch.PtrsPerTable : 0);
        long free = kernel.Buddy.NrFreePages;
        if (free + kept != bootFreePages)
            ThrowHelper.KernelBug($"DEBUG_VM: leak at teardown: {free} pages free + {kept} kept by the kernel, but {bootFreePages} were free at boot ({bootFreePages - free - kept} pages lost)");
    }

    /// <summary>Non-present entries between operations: device-private and device-exclusive entries are
    /// mappings (they hold a mapcount and a reference); a migration entry must never outlive the
    /// migration that made it; markers hold nothing.</summary>
    private static void CheckNonPresent(KernelState kernel, Vma vma, ulong addr, SwapEntry entry, bool pmdLevel, Counts counts)
    {
        var sw = kernel.Swapops;
        if (sw.SoftleafIsMarker(entry) && !pmdLevel)
            return;
        if (sw.SoftleafIsMigration(entry))
            ThrowHelper.KernelBug($"DEBUG_VM: migration entry {entry} at 0x{addr:x} in {vma} outlived its migration (folio {sw.SoftleafToFolio(entry)})");
        if (sw.SoftleafIsDevicePrivate(entry))
        {
            var page = sw.SoftleafToPage(entry);
            var folio = page.Folio;
            if (!page.IsDevicePrivate)
                ThrowHelper.KernelBug($"DEBUG_VM: device-private entry at 0x{addr:x} names {page}, which is not device-private");
            if (kernel.Config.DevicePrivateDesign == DevicePrivateDesign.DeviceAddressSpace && !page.Section.InDevicePrivateSpace)
                ThrowHelper.KernelBug($"DEBUG_VM: device-private {page} at 0x{addr:x} was reached through the physical memmap in the redesign");
            // zap_nonpresent_ptes' WARN: the folio is anonymous; its VMA need not be (a COW folio of a
            // MAP_PRIVATE file mapping may move to device-private memory).
            if (!folio.IsAnon)
                ThrowHelper.KernelBug($"DEBUG_VM: device-private {folio} mapped at 0x{addr:x} in {vma} is not anonymous");
            if (folio.RefCount <= 0)
                ThrowHelper.KernelBug($"DEBUG_VM: device-private entry at 0x{addr:x} names freed {folio}");
            if (pmdLevel)
            {
                if (folio.Order != Arch.HpagePmdOrder || folio.Page() != page)
                    ThrowHelper.KernelBug($"DEBUG_VM: device-private PMD at 0x{addr:x} names {page}, not the head of an order-9 folio");
                Bump(counts.PmdMaps, folio);
                Bump(counts.Total, folio);
                CheckRmap(folio, vma, addr, addr, counts.Rmap);
                return;
            }
            Bump(counts.PteMaps, page);
            Bump(counts.Total, folio);
            CheckRmap(folio, vma, addr - ((ulong)(page.Index - folio.Index) << Arch.PageShift), addr, counts.Rmap);
            return;
        }
        if (sw.SoftleafIsDeviceExclusive(entry) && !pmdLevel)
        {
            var page = sw.SoftleafToPage(entry);
            var folio = page.Folio;
            if (!folio.IsAnon)
                ThrowHelper.KernelBug($"DEBUG_VM: device-exclusive entry at 0x{addr:x} names non-anonymous {folio}");
            Bump(counts.PteMaps, page);
            Bump(counts.Total, folio);
            CheckRmap(folio, vma, addr - ((ulong)(page.Index - folio.Index) << Arch.PageShift), addr, counts.Rmap);
            return;
        }
        ThrowHelper.KernelBug($"DEBUG_VM: unexpected {(pmdLevel ? "PMD" : "PTE")} entry {entry} at 0x{addr:x} in {vma}");
    }
}

