namespace HmmSim.Kernel;

/// <summary>mm/migrate_device.c: moving anonymous pages between system memory and device memory.
/// setup collects and unmaps (migration entries replace the mappings), the driver allocates and
/// copies, pages moves the struct-page state over, finalize maps the new pages in.</summary>
public static class MigrateDevice
{
    private const ulong VmSpecial = (ulong)(VmFlags.Io | VmFlags.DontExpand | VmFlags.PfnMap | VmFlags.MixedMap);

    /// <summary>migrate_vma_setup: collect the pages of [args.Start, args.End) that args.Flags selects,
    /// lock them, and replace their mappings with migration entries; fills args.Src, args.Npages and
    /// args.Cpages (0 collected is not an error). The caller holds mmap_lock for read. Returns
    /// <see cref="Errno.EINVAL"/> for a missing, hugetlb or VM_IO/VM_PFNMAP VMA, a range outside it or
    /// empty, Src/Dst arrays too short, or a FaultPage that is not a locked device-private page.</summary>
    public static Errno MigrateVmaSetup(KernelState kernel, MigrateVma args)
    {
        long nrPages = (long)((args.End - args.Start) >> Arch.PageShift);
        args.Start &= Arch.PageMask;
        args.End &= Arch.PageMask;
        var vma = args.Vma;
        if (vma is null || vma.IsHugetlb || ((ulong)vma.Flags & VmSpecial) != 0)
            return Errno.EINVAL;
        if (nrPages <= 0 || args.Start < vma.Start || args.Start >= vma.End || args.End <= vma.Start || args.End > vma.End)
            return Errno.EINVAL;
        if (args.Src.Length < nrPages || args.Dst.Length < nrPages)
            return Errno.EINVAL;
        if (!args.FaultPage.IsNull && (!args.FaultPage.IsDevicePrivate || !args.FaultPage.Folio.IsLocked))
            return Errno.EINVAL;
        Array.Clear(args.Src, 0, (int)nrPages);
        args.Cpages = 0;
        args.Npages = 0;
        var trace = kernel.Trace;
        int pid = vma.Mm.Pid;
        trace?.Event(pid, "migrate_vma_setup", $"start=0x{args.Start:x} end=0x{args.End:x} nr_pages={nrPages}");
        MigrateVmaCollect(kernel, args);
        trace?.Event(pid, "migrate_vma_collect", $"start=0x{args.Start:x} end=0x{args.End:x} npages={args.Npages}");
        if (args.Cpages != 0)
            args.Cpages = MigrateDeviceUnmap(kernel, args.Src, args.Npages, args.FaultPage);
        trace?.Event(pid, "migrate_vma_unmap", $"npages={args.Npages} cpages={args.Cpages}");
        return Errno.None;
    }

    // --- collection ------------------------------------------------------------------------

    /// <summary>migrate_vma_walk_ops: the migration being collected is the walk's private data.</summary>
    private readonly struct MigrateVmaWalkOps(KernelState kernel, MigrateVma m) : IMmWalkOps
    {
        public static MmWalkHandlers Handlers => MmWalkHandlers.PmdEntry | MmWalkHandlers.PteHole;

        public int PmdEntry(ref ulong pmd, ulong addr, ulong next, ref MmWalk walk)
        {
            MigrateVmaCollectPmd(kernel, m, addr, next);
            return 0;
        }

        public int PteHole(ulong addr, ulong next, int depth, ref MmWalk walk)
        {
            MigrateVmaCollectHole(m, addr, next);
            return 0;
        }

        public int PgdEntry(ref ulong pgd, ulong addr, ulong next, ref MmWalk walk) => 0;
        public int PudEntry(ref ulong pud, ulong addr, ulong next, ref MmWalk walk) => 0;
        public int PteEntry(ref ulong pte, ulong addr, ulong next, ref MmWalk walk) => 0;
        public int HugetlbEntry(ref ulong pte, ulong hmask, ulong addr, ulong next, ref MmWalk walk) => 0;
        public int TestWalk(ulong start, ulong end, ref MmWalk walk) => 0;
    }

    /// <summary>migrate_vma_collect: walk_page_range with migrate_vma_walk_ops inside an mmu notifier range.</summary>
    private static void MigrateVmaCollect(KernelState kernel, MigrateVma m)
    {
        var mm = m.Vma!.Mm;
        var range = new MmuNotifierRange(m.Start, m.End, MmuNotifyEvent.Migrate, m.PgmapOwner);
        MmuNotifier.InvalidateRangeStart(mm, range);
        var ops = new MigrateVmaWalkOps(kernel, m);
        Pagewalk.WalkPageRange(mm, m.Start, m.End, ref ops);
        MmuNotifier.InvalidateRangeEnd(mm, range);
        m.End = m.Start + (m.Npages << Arch.PageShift);
    }

    private static void Record(MigrateVma m, ulong mpfn, bool counted)
    {
        m.Dst[m.Npages] = 0;
        m.Src[m.Npages++] = mpfn;
        if (counted)
            m.Cpages++;
    }

    /// <summary>migrate_vma_collect_skip.</summary>
    private static void MigrateVmaCollectSkip(MigrateVma m, ulong start, ulong end)
    {
        for (ulong a = start; a < end; a += Arch.PageSize)
            Record(m, 0, counted: false);
    }

    private static bool CompoundAllowed(MigrateVma m, ulong start, ulong end) =>
        (m.Flags & MigrateVmaSelect.Compound) != 0 && (start & (Arch.PmdSize - 1)) == 0 && end - start == Arch.PmdSize;

    /// <summary>migrate_vma_collect_hole.</summary>
    private static void MigrateVmaCollectHole(MigrateVma m, ulong start, ulong end)
    {
        if (!m.Vma!.IsAnonymous)
        {
            MigrateVmaCollectSkip(m, start, end);
            return;
        }
        if (CompoundAllowed(m, start, end))
        {
            Record(m, MigratePfn.Migrate | MigratePfn.Compound, counted: true);
            MigrateVmaCollectSkip(m, start + Arch.PageSize, end);
            return;
        }
        for (ulong a = start; a < end; a += Arch.PageSize)
            Record(m, MigratePfn.Migrate, counted: true);
    }

    private static bool OwnerSelects(MigrateVma m, Folio folio, MigrateVmaSelect need) =>
        (m.Flags & need) != 0 && ReferenceEquals(folio.Pgmap?.Owner, m.PgmapOwner);

    private static bool LockForCollect(MigrateVma m, Folio folio)
    {
        if (!m.FaultPage.IsNull && m.FaultPage.Folio == folio)
            return true;
        return folio.TryLock();
    }

    private static void UnlockCollected(MigrateVma m, Folio folio)
    {
        if (m.FaultPage.IsNull || m.FaultPage.Folio != folio)
            folio.Unlock();
    }

    /// <summary>migrate_vma_split_folio: the large folio at an address is split so its pages can be
    /// collected one by one. The fault folio is already locked and referenced by do_swap_page; after
    /// the split that lock and reference move to the new folio holding the fault page.</summary>
    private static bool MigrateVmaSplitFolio(KernelState kernel, MigrateVma m, Folio folio)
    {
        bool isFault = !m.FaultPage.IsNull && m.FaultPage.Folio == folio;
        if (!isFault)
        {
            if (!folio.TryGet())
                return false;
            if (!folio.TryLock())
            {
                folio.Put();
                return false;
            }
        }
        var err = HugeMemory.SplitFolio(kernel, folio);
        if (isFault)
        {
            var newFault = m.FaultPage.Folio;
            if (err == Errno.None && newFault != folio)
            {
                newFault.Get();
                newFault.Lock();
                folio.Unlock();
                folio.Put();
            }
        }
        else
        {
            folio.Unlock();
            folio.Put();
        }
        return err == Errno.None;
    }

    /// <summary>migrate_vma_collect_pmd (with migrate_vma_collect_huge_pmd for a huge or non-present PMD).</summary>
    private static void MigrateVmaCollectPmd(KernelState kernel, MigrateVma m, ulong start, ulong end)
    {
        var vma = m.Vma!;
        var mm = vma.Mm;
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        for (int round = 0; ; round++)
        {
            if (round > 8)
                ThrowHelper.KernelBug($"migrate_vma_collect_pmd at 0x{start:x} did not settle");
            if (!mm.PmdTable(start, alloc: false, out var pmdTable))
            {
                MigrateVmaCollectHole(m, start, end);
                return;
            }
            ulong pmd = mm.PmdRef(pmdTable, start);
            if (pmd == 0)
            {
                MigrateVmaCollectHole(m, start, end);
                return;
            }
            if (arch.IsTable(pmd))
            {
                CollectPtes(kernel, m, pmdTable, start, end);
                return;
            }
            ulong haddr = start & ~(Arch.PmdSize - 1);
            Folio folio;
            bool write;
            if (arch.PmdPresent(pmd))
            {
                if ((m.Flags & MigrateVmaSelect.System) == 0)
                {
                    MigrateVmaCollectSkip(m, start, end);
                    return;
                }
                if (HugeMemory.IsHugeZeroPmd(kernel, pmd))
                {
                    MigrateVmaCollectHole(m, start, end);
                    return;
                }
                folio = kernel.Memmap.PfnToPage(arch.PmdPfn(pmd)).Folio;
                write = arch.PmdWrite(pmd);
            }
            else
            {
                var entry = arch.PmdToSwpEntry(pmd);
                if (sw.SoftleafIsMigration(entry))
                {
                    Migrate.MigrationEntryWait(kernel, entry);
                    continue;
                }
                folio = sw.SoftleafToFolio(entry);
                if (!sw.SoftleafIsDevicePrivate(entry) || !OwnerSelects(m, folio, MigrateVmaSelect.DevicePrivate))
                {
                    MigrateVmaCollectSkip(m, start, end);
                    return;
                }
                write = sw.SoftleafIsDevicePrivateWrite(entry);
            }
            if (CompoundAllowed(m, start, end) && start == haddr)
            {
                if (!folio.TryGet())
                {
                    MigrateVmaCollectSkip(m, start, end);
                    return;
                }
                if (!LockForCollect(m, folio))
                {
                    folio.Put();
                    MigrateVmaCollectSkip(m, start, end);
                    return;
                }
                bool installed;
                lock (mm.PageTableLock)
                {
                    ref ulong slot = ref mm.PmdRef(pmdTable, haddr);
                    installed = slot == pmd && Migrate.InstallPmdMigrationEntry(vma, ref slot, folio);
                }
                if (installed)
                {
                    Record(m, MigratePfn.FromPage(folio.Page()) | MigratePfn.Migrate | MigratePfn.Compound | (write ? MigratePfn.Write : 0), counted: true);
                    MigrateVmaCollectSkip(m, start + Arch.PageSize, end);
                    return;
                }
                UnlockCollected(m, folio);
                folio.Put();
                continue;
            }
            // No compound migration here: split the folio and collect at PTE level.
            if (!MigrateVmaSplitFolio(kernel, m, folio))
            {
                MigrateVmaCollectSkip(m, start, end);
                return;
            }
        }
    }

    /// <summary>The PTE loop of migrate_vma_collect_pmd.</summary>
    private static void CollectPtes(KernelState kernel, MigrateVma m, Pfn pmdTable, ulong start, ulong end)
    {
        var vma = m.Vma!;
        var mm = vma.Mm;
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        for (ulong addr = start; addr < end;)
        {
            if (!mm.PteTable(pmdTable, addr, alloc: false, out var pteTable))
            {
                // The PMD changed under us (collapsed or populated as THP): collect the rest again.
                MigrateVmaCollectPmd(kernel, m, addr, end);
                return;
            }
            Folio toSplit = default;
            // migrate_vma_collect_pmd maps and locks the PTE table once (pte_offset_map_lock) and steps
            // through it; the lock is dropped only to split a large folio.
            lock (mm.PageTableLock)
            {
                var table = mm.Table(pteTable);
                ulong tableEnd = Math.Min(end, (addr | (Arch.PmdSize - 1)) + 1);
                for (; addr < tableEnd; addr += Arch.PageSize)
                {
                    ref ulong slot = ref table[MmStruct.PteIndex(addr)];
                    ulong pte = slot;
                    ulong mpfn;
                    Page page;
                    if (pte == 0)
                    {
                        Record(m, vma.IsAnonymous ? MigratePfn.Migrate : 0, counted: vma.IsAnonymous);
                        continue;
                    }
                    if (!arch.PtePresent(pte))
                    {
                        var entry = arch.PteToSwpEntry(pte);
                        if (!sw.SoftleafIsDevicePrivate(entry))
                        {
                            Record(m, 0, counted: false);
                            continue;
                        }
                        page = sw.SoftleafToPage(entry);
                        if (!OwnerSelects(m, page.Folio, MigrateVmaSelect.DevicePrivate))
                        {
                            Record(m, 0, counted: false);
                            continue;
                        }
                        if (page.Folio.IsLarge)
                        {
                            toSplit = page.Folio;
                            break;
                        }
                        mpfn = MigratePfn.FromPage(page) | MigratePfn.Migrate | (sw.SoftleafIsDevicePrivateWrite(entry) ? MigratePfn.Write : 0);
                    }
                    else
                    {
                        var pfn = arch.PtePfn(pte);
                        if (pfn == kernel.ZeroPfn)
                        {
                            bool sys = (m.Flags & MigrateVmaSelect.System) != 0;
                            Record(m, sys ? MigratePfn.Migrate : 0, counted: sys);
                            continue;
                        }
                        page = Memory.VmNormalPage(vma, pte);
                        if (page.IsNull
                            || !page.IsZoneDevice && (m.Flags & MigrateVmaSelect.System) == 0
                            || page.IsDeviceCoherent && !OwnerSelects(m, page.Folio, MigrateVmaSelect.DeviceCoherent)
                            || page.IsZoneDevice && !page.IsDeviceCoherent)
                        {
                            Record(m, 0, counted: false);
                            continue;
                        }
                        if (page.Folio.IsLarge)
                        {
                            toSplit = page.Folio;
                            break;
                        }
                        mpfn = MigratePfn.FromPage(page) | MigratePfn.Migrate | (arch.PteWrite(pte) ? MigratePfn.Write : 0);
                    }
                    var folio = page.Folio;
                    if (folio.Mapping == 0 || !folio.TryGet())
                    {
                        Record(m, 0, counted: false);
                        continue;
                    }
                    if (!LockForCollect(m, folio))
                    {
                        folio.Put();
                        Record(m, 0, counted: false);
                        continue;
                    }
                    if (!Migrate.InstallPteMigrationEntry(vma, ref slot, page))
                    {
                        UnlockCollected(m, folio);
                        folio.Put();
                        Record(m, 0, counted: false);
                        continue;
                    }
                    Record(m, mpfn, counted: true);
                }
            }
            if (toSplit.IsNull)
                continue;
            if (!MigrateVmaSplitFolio(kernel, m, toSplit))
            {
                MigrateVmaCollectSkip(m, addr, end);
                return;
            }
        }
    }

    // --- unmap -------------------------------------------------------------------------------

    /// <summary>migrate_vma_check_page: a page with references beyond its mappings and the migration's own is pinned.</summary>
    private static bool MigrateVmaCheckPage(Folio folio, Page faultPage)
    {
        int extra = 1 + (!faultPage.IsNull && faultPage.Folio == folio ? 1 : 0);
        if (folio.IsZoneDevice)
            extra++;
        if (!folio.IsAnon && folio.Mapping != 0)
            extra++;
        return folio.RefCount - extra <= folio.MapCount;
    }

    /// <summary>migrate_device_unmap: whatever is still mapped becomes a migration entry; pinned or
    /// still-mapped pages are restored and dropped from the migration. Returns the pages left.</summary>
    internal static ulong MigrateDeviceUnmap(KernelState kernel, ulong[] src, ulong npages, Page faultPage)
    {
        ulong unmapped = 0;
        bool restore = false;
        var scratch = RentScratch();
        try
        {
            return Unmap(kernel, src, npages, faultPage, scratch, ref unmapped, ref restore);
        }
        finally
        {
            ReturnScratch(scratch);
        }
    }

    [ThreadStatic]
    private static List<Rmap.Mapping>? _scratch;

    /// <summary>The rmap walk's list, reused per thread (a nested migration on the same thread gets its own),
    /// so setup and finalize allocate nothing per call in steady state.</summary>
    private static List<Rmap.Mapping> RentScratch()
    {
        var list = _scratch ?? new List<Rmap.Mapping>();
        _scratch = null;
        return list;
    }

    private static void ReturnScratch(List<Rmap.Mapping> list)
    {
        list.Clear();
        _scratch = list;
    }

    private static ulong Unmap(KernelState kernel, ulong[] src, ulong npages, Page faultPage, List<Rmap.Mapping> scratch, ref ulong unmapped, ref bool restore)
    {
        for (ulong i = 0; i < npages; i++)
        {
            var page = MigratePfn.ToPage(kernel, src[i]);
            if (page.IsNull)
            {
                if ((src[i] & MigratePfn.Migrate) != 0)
                    unmapped++;
                continue;
            }
            var folio = page.Folio;
            if (folio.NrPages > 1)
                src[i] |= MigratePfn.Compound;
            if (folio.Mapped)
                Migrate.TryToMigrate(kernel, folio, scratch);
            if (folio.Mapped || !MigrateVmaCheckPage(folio, faultPage))
            {
                src[i] &= ~MigratePfn.Migrate;
                restore = true;
                continue;
            }
            unmapped++;
        }
        if (!restore)
            return unmapped;
        for (ulong i = 0; i < npages; i++)
        {
            var page = MigratePfn.ToPage(kernel, src[i]);
            if (page.IsNull || (src[i] & MigratePfn.Migrate) != 0)
                continue;
            var folio = page.Folio;
            Migrate.RemoveMigrationPtes(kernel, folio, folio, scratch);
            src[i] = 0;
            if (faultPage.IsNull || faultPage.Folio != folio)
                folio.Unlock();
            folio.Put();
        }
        return unmapped;
    }

    // --- pages ---------------------------------------------------------------------------------

    /// <summary>migrate_vma_pages: move struct page state (mapping, index, flags) from each collected
    /// source to the driver's destination in m.Dst; a source whose destination is missing or
    /// unsuitable loses MIGRATE_PFN_MIGRATE. The driver has already copied the data.</summary>
    public static void MigrateVmaPages(KernelState kernel, MigrateVma m)
    {
        kernel.Trace?.Event(m.Vma?.Mm.Pid ?? 0, "migrate_vma_pages", $"npages={m.Npages} start=0x{m.Start:x} end=0x{m.End:x}");
        // The driver allocated and copied since migrate_vma_setup (it may sleep there): a scheduling point.
        DeterministicScheduler.Current?.Point("migrate_vma_pages");
        MigrateDevicePagesInternal(kernel, m.Src, m.Dst, m.Npages, m);
    }

    /// <summary>migrate_device_pages: as <see cref="MigrateVmaPages"/> for pages collected by
    /// <see cref="MigrateDeviceRange"/> (eviction, no VMA).</summary>
    public static void MigrateDevicePages(KernelState kernel, ulong[] src, ulong[] dst, ulong npages)
    {
        MigrateDevicePagesInternal(kernel, src, dst, npages, null);
        if (kernel.Trace is { } trace)
        {
            ulong migrated = 0;
            for (ulong i = 0; i < npages; i++)
                migrated += (src[i] & MigratePfn.Migrate) != 0 ? 1UL : 0;
            trace.Event(0, "migrate_device_pages", $"npages={npages} migrated={migrated}");
        }
    }

    /// <summary>__migrate_device_pages.</summary>
    private static void MigrateDevicePagesInternal(KernelState kernel, ulong[] src, ulong[] dst, ulong npages, MigrateVma? m)
    {
        bool notified = false;
        MmuNotifierRange range = default;
        for (ulong i = 0; i < npages; i++)
        {
            var newPage = MigratePfn.ToPage(kernel, dst[i]);
            var page = MigratePfn.ToPage(kernel, src[i]);
            if (newPage.IsNull)
            {
                src[i] &= ~MigratePfn.Migrate;
                continue;
            }
            if (page.IsNull)
            {
                if ((src[i] & MigratePfn.Migrate) == 0 || m is null)
                    continue;
                ulong addr = m.Start + (i << Arch.PageShift);
                if (!notified)
                {
                    notified = true;
                    range = new MmuNotifierRange(addr, m.End, MmuNotifyEvent.Migrate, m.PgmapOwner);
                    MmuNotifier.InvalidateRangeStart(m.Vma!.Mm, range);
                }
                ulong nr = 1;
                if ((src[i] & MigratePfn.Compound) != 0 && (dst[i] & MigratePfn.Compound) == 0)
                {
                    nr = Math.Min((ulong)Arch.PtrsPerTable, npages - i);
                    src[i] &= ~MigratePfn.Compound;
                }
                for (ulong j = 0; j < nr; j++)
                {
                    src[i + j] |= MigratePfn.Migrate;
                    MigrateVmaInsertPage(kernel, m, addr + (j << Arch.PageShift), ref dst[i + j], ref src[i + j]);
                }
                i += nr - 1;
                continue;
            }
            var folio = page.Folio;
            if ((src[i] & (MigratePfn.Migrate | MigratePfn.Compound)) == (MigratePfn.Migrate | MigratePfn.Compound) && (dst[i] & MigratePfn.Compound) == 0)
            {
                if (m is null || !MigrateVmaSplitUnmappedFolio(kernel, m, i, src))
                {
                    src[i] &= ~(MigratePfn.Migrate | MigratePfn.Compound);
                    continue;
                }
            }
            else if ((src[i] & MigratePfn.Migrate) != 0 && (dst[i] & MigratePfn.Compound) != 0 && (src[i] & MigratePfn.Compound) == 0)
            {
                src[i] &= ~MigratePfn.Migrate;
                continue;
            }
            if ((src[i] & MigratePfn.Migrate) == 0)
                continue;
            var newFolio = newPage.Folio;
            if (newFolio.IsZoneDevice)
            {
                bool deviceTarget = newFolio.IsDevicePrivate || newFolio.IsDeviceCoherent;
                // File pages never move to device memory; other ZONE_DEVICE types take nothing.
                if (!deviceTarget || !folio.IsAnon)
                {
                    src[i] &= ~MigratePfn.Migrate;
                    continue;
                }
            }
            if (!FolioMigrateMapping(newFolio, folio, m?.FaultPage ?? default))
                src[i] &= ~MigratePfn.Migrate;
        }
        if (notified)
            MmuNotifier.InvalidateRangeEnd(m!.Vma!.Mm, range);
    }

    /// <summary>folio_migrate_mapping + folio_migrate_flags for an anonymous folio: the new folio takes
    /// the old one's place in the rmap (mapping and index) and its flags. Fails if someone holds
    /// more references than the migration expects.</summary>
    private static bool FolioMigrateMapping(Folio dst, Folio src, Page faultPage)
    {
        int expected = 1 + (!faultPage.IsNull && faultPage.Folio == src ? 1 : 0);
        if (src.RefCount != expected)
            return false;
        dst.Mapping = src.Mapping;
        dst.PgIndex = src.PgIndex;
        const PageFlags carried = PageFlags.Anon | PageFlags.SwapBacked | PageFlags.Dirty | PageFlags.Uptodate;
        dst.SetFlag((PageFlags)((uint)src.HeadFor(PageField.Flags, false, carried).Flags & (uint)carried));
        return true;
    }

    /// <summary>migrate_vma_split_unmapped_folio: the source THP is under a PMD migration entry but the driver gave small pages: split
    /// the entry and the folio; the new folios join the migration one entry each.</summary>
    private static bool MigrateVmaSplitUnmappedFolio(KernelState kernel, MigrateVma m, ulong i, ulong[] src)
    {
        var folio = MigratePfn.ToPage(kernel, src[i]).Folio;
        ulong addr = m.Start + (i << Arch.PageShift);
        var mm = m.Vma!.Mm;
        if (mm.PmdTable(addr, alloc: false, out var pmdTable))
        {
            ulong pmd = mm.PmdRef(pmdTable, addr);
            if (pmd != 0 && !kernel.Arch.IsTable(pmd))
                HugeMemory.SplitHugePmd(m.Vma, pmdTable, addr & ~(Arch.PmdSize - 1));
        }
        if (HugeMemory.SplitFolio(kernel, folio, unmappedMigration: true) != Errno.None)
            return false;
        ulong flags = src[i] & (MigratePfn.Migrate | MigratePfn.Write);
        src[i] &= ~MigratePfn.Compound;
        for (int k = 1; k < Arch.PtrsPerTable && i + (ulong)k < (ulong)src.Length; k++)
            src[i + (ulong)k] = MigratePfn.FromPage(folio.Page(k)) | flags;
        return true;
    }

    /// <summary>migrate_vma_insert_page: a hole or the zero page gets the new page directly.</summary>
    private static void MigrateVmaInsertPage(KernelState kernel, MigrateVma m, ulong addr, ref ulong dst, ref ulong src)
    {
        var vma = m.Vma!;
        var mm = vma.Mm;
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        var page = MigratePfn.ToPage(kernel, dst);
        if (!vma.IsAnonymous || page.IsNull)
        {
            src &= ~MigratePfn.Migrate;
            return;
        }
        var folio = page.Folio;
        if ((dst & MigratePfn.Compound) != 0)
        {
            MigrateVmaInsertHugePmdPage(kernel, m, addr, folio, ref src);
            return;
        }
        if (!mm.PmdTable(addr, alloc: true, out var pmdTable))
        {
            src &= ~MigratePfn.Migrate;
            return;
        }
        ulong pmd = mm.PmdRef(pmdTable, addr);
        if (pmd != 0 && !arch.IsTable(pmd))
        {
            if (!HugeMemory.IsHugeZeroPmd(kernel, pmd))
            {
                src &= ~MigratePfn.Migrate;
                return;
            }
            HugeMemory.SplitHugePmd(vma, pmdTable, addr & ~(Arch.PmdSize - 1));
        }
        if (!mm.PteTable(pmdTable, addr, alloc: true, out var pteTable))
        {
            src &= ~MigratePfn.Migrate;
            return;
        }
        Memory.AnonVmaPrepare(vma);
        folio.SetFlag(PageFlags.Uptodate);
        bool writable = (vma.Flags & VmFlags.Write) != 0;
        ulong entry;
        if (page.IsDevicePrivate)
        {
            entry = arch.SwpEntryToPte(writable ? sw.MakeWritableDevicePrivateEntryFromPage(page) : sw.MakeReadableDevicePrivateEntryFromPage(page));
        }
        else if (!page.IsZoneDevice || page.IsDeviceCoherent)
        {
            entry = arch.PfnPte(page.ToPfn(), vma.PageProt);
            if (writable)
                entry = arch.PteMkwrite(arch.PteMkdirty(entry));
        }
        else
        {
            src &= ~MigratePfn.Migrate;
            return;
        }
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PteRef(pteTable, addr);
            ulong old = slot;
            bool zero = old != 0 && arch.PtePresent(old) && arch.PtePfn(old) == kernel.ZeroPfn;
            if (old != 0 && !zero)
            {
                src &= ~MigratePfn.Migrate;
                return;
            }
            Interlocked.Increment(ref mm.AnonRss);
            Rmap.FolioAddNewAnonRmap(folio, vma, addr, pmdMapped: false);
            folio.Get();
            slot = entry;
        }
        kernel.VmStat.Inc(page.IsZoneDevice ? VmStatItem.DeviceMigrateToDevice : VmStatItem.DeviceMigrateToRam);
        src = MigratePfn.Migrate;
    }

    /// <summary>migrate_vma_insert_huge_pmd_page.</summary>
    private static void MigrateVmaInsertHugePmdPage(KernelState kernel, MigrateVma m, ulong addr, Folio folio, ref ulong src)
    {
        var vma = m.Vma!;
        var mm = vma.Mm;
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        bool ok = (addr & (Arch.PmdSize - 1)) == 0 && HugeMemory.ThpRangeFits(vma, addr) && folio.Order == Arch.HpagePmdOrder
            && mm.PmdTable(addr, alloc: true, out var pmdTable);
        if (!ok)
        {
            src &= ~MigratePfn.Migrate;
            return;
        }
        mm.PmdTable(addr, alloc: true, out pmdTable);
        Memory.AnonVmaPrepare(vma);
        bool writable = (vma.Flags & VmFlags.Write) != 0;
        ulong entry;
        if (folio.IsDevicePrivate)
            entry = arch.SwpEntryToPmd(writable ? sw.MakeWritableDevicePrivateEntryFromPage(folio.Page()) : sw.MakeReadableDevicePrivateEntryFromPage(folio.Page()));
        else if (!folio.IsZoneDevice || folio.IsDeviceCoherent)
        {
            entry = arch.PfnPmd(folio.Page().ToPfn(), vma.PageProt);
            if (writable)
                entry = arch.PmdMkwrite(arch.PmdMkdirty(entry));
        }
        else
        {
            src &= ~MigratePfn.Migrate;
            return;
        }
        Pfn oldTable = default;
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PmdRef(pmdTable, addr);
            ulong old = slot;
            if (old != 0 && !HugeMemory.IsHugeZeroPmd(kernel, old))
            {
                // An empty PTE table left by an earlier unmap may be replaced; anything mapped may not.
                if (!arch.IsTable(old) || !IsEmptyTable(mm, arch.TablePfn(old)))
                {
                    src &= ~MigratePfn.Migrate;
                    return;
                }
                oldTable = arch.TablePfn(old);
            }
            Interlocked.Add(ref mm.AnonRss, Arch.PtrsPerTable);
            Rmap.FolioAddNewAnonRmap(folio, vma, addr, pmdMapped: true);
            folio.Get();
            slot = entry;
            if (oldTable.Value != 0)
                mm.FreeTable(oldTable);
        }
        bool dev = folio.IsZoneDevice;
        kernel.VmStat.Add(dev ? VmStatItem.DeviceMigrateToDevice : VmStatItem.DeviceMigrateToRam, folio.NrPages);
        kernel.VmStat.Inc(dev ? VmStatItem.DeviceMigrateToDeviceThp : VmStatItem.DeviceMigrateToRamThp);
        src = MigratePfn.Migrate | MigratePfn.Compound;
    }

    private static bool IsEmptyTable(MmStruct mm, Pfn table)
    {
        foreach (ulong e in mm.Table(table))
            if (e != 0)
                return false;
        return true;
    }

    // --- finalize ------------------------------------------------------------------------------

    /// <summary>migrate_vma_finalize: replace each migration entry with the new page (or the old one
    /// where the move failed), then unlock and drop the references the migration held.</summary>
    public static void MigrateVmaFinalize(KernelState kernel, MigrateVma m)
    {
        kernel.Trace?.Event(m.Vma?.Mm.Pid ?? 0, "migrate_vma_finalize", $"npages={m.Npages}");
        MigrateDeviceFinalizeInternal(kernel, m.Src, m.Dst, m.Npages, m.FaultPage);
    }

    /// <summary>migrate_device_finalize: <see cref="MigrateVmaFinalize"/> for a migration started by
    /// <see cref="MigrateDeviceRange"/>.</summary>
    public static void MigrateDeviceFinalize(KernelState kernel, ulong[] src, ulong[] dst, ulong npages)
    {
        kernel.Trace?.Event(0, "migrate_device_finalize", $"npages={npages}");
        MigrateDeviceFinalizeInternal(kernel, src, dst, npages, default);
    }

    /// <summary>__migrate_device_finalize: map the new folios where the migration entries are (or the old
    /// ones back where the migration did not happen), then unlock and release.</summary>
    private static void MigrateDeviceFinalizeInternal(KernelState kernel, ulong[] src, ulong[] dst, ulong npages, Page faultPage)
    {
        var scratch = RentScratch();
        try
        {
            FinalizeEntries(kernel, src, dst, npages, faultPage, scratch);
        }
        finally
        {
            ReturnScratch(scratch);
        }
    }

    private static void FinalizeEntries(KernelState kernel, ulong[] src, ulong[] dst, ulong npages, Page faultPage, List<Rmap.Mapping> scratch)
    {
        var stats = new FinalizeStats();
        var run = new SmallRun();
        for (ulong i = 0; i < npages; i++)
        {
            var dpage = MigratePfn.ToPage(kernel, dst[i]);
            var spage = MigratePfn.ToPage(kernel, src[i]);
            if (spage.IsNull)
            {
                FlushRun(kernel, src, dst, ref run, faultPage, scratch, ref stats);
                if (!dpage.IsNull)
                {
                    dpage.Folio.Unlock();
                    dpage.Folio.Put();
                }
                continue;
            }
            var sf = spage.Folio;
            if ((src[i] & MigratePfn.Migrate) != 0 && !dpage.IsNull && !sf.IsLarge && !dpage.Folio.IsLarge && sf.Mapping != 0)
            {
                // Small folios moved one for one are restored a run at a time (RemoveMigrationPtesRun).
                if (!run.Extends((int)i, sf))
                {
                    FlushRun(kernel, src, dst, ref run, faultPage, scratch, ref stats);
                    run = new SmallRun((int)i, sf);
                }
                continue;
            }
            FlushRun(kernel, src, dst, ref run, faultPage, scratch, ref stats);
            Folio df;
            if ((src[i] & MigratePfn.Migrate) == 0 || dpage.IsNull)
            {
                if (!dpage.IsNull)
                {
                    dpage.Folio.Unlock();
                    dpage.Folio.Put();
                }
                df = sf;
            }
            else
            {
                df = dpage.Folio;
            }
            Migrate.RemoveMigrationPtes(kernel, sf, df, scratch);
            FinishEntry(sf, df, faultPage, ref stats);
        }
        FlushRun(kernel, src, dst, ref run, faultPage, scratch, ref stats);
        stats.AddTo(kernel.VmStat);
    }

    /// <summary>Consecutive entries whose small source folios one rmap owner holds at consecutive
    /// indices, each moved to a small destination folio.</summary>
    private struct SmallRun(int start, Folio first)
    {
        public readonly int Start = start;
        public int Count = first.IsNull ? 0 : 1;
        public readonly uint Mapping = first.IsNull ? 0 : first.Mapping;
        public readonly ulong PgIndex = first.IsNull ? 0 : first.PgIndex;

        public bool Extends(int i, Folio sf)
        {
            if (Count == 0 || i != Start + Count || sf.Mapping != Mapping || sf.PgIndex != PgIndex + (ulong)Count)
                return false;
            Count++;
            return true;
        }
    }

    private static void FlushRun(KernelState kernel, ulong[] src, ulong[] dst, ref SmallRun run, Page faultPage, List<Rmap.Mapping> scratch, ref FinalizeStats stats)
    {
        if (run.Count == 0)
            return;
        var first = MigratePfn.ToPage(kernel, src[run.Start]).Folio;
        if (Rmap.Owner(first) is { } owner)
            Migrate.RemoveMigrationPtesRun(kernel, owner, run.PgIndex, src.AsSpan(run.Start, run.Count), dst.AsSpan(run.Start, run.Count), scratch);
        for (int k = run.Start; k < run.Start + run.Count; k++)
            FinishEntry(MigratePfn.ToPage(kernel, src[k]).Folio, MigratePfn.ToPage(kernel, dst[k]).Folio, faultPage, ref stats);
        run = default;
    }

    /// <summary>What migrate_device_finalize does for one entry once its migration entries are gone:
    /// the source folio is unlocked, and a replaced one leaves the rmap and is released with its
    /// destination's extra reference.</summary>
    private static void FinishEntry(Folio sf, Folio df, Page faultPage, ref FinalizeStats stats)
    {
        if (faultPage.IsNull || faultPage.Folio != sf)
            sf.Unlock();
        if (df != sf)
        {
            // The old folio leaves the rmap; its last reference frees it (to the buddy or the pagemap).
            sf.Mapping = 0;
            sf.ClearFlag(PageFlags.Anon);
            df.Unlock();
            df.Put();
            bool toDevice = df.IsZoneDevice;
            (toDevice ? ref stats.ToDevice : ref stats.ToRam) += df.NrPages;
            if (df.IsLarge)
                (toDevice ? ref stats.ToDeviceThp : ref stats.ToRamThp)++;
        }
        sf.Put();
    }

    /// <summary>The vmstat events of one finalize, added once at its end (as the kernel's per-CPU
    /// vm_event counters fold into the global ones later, not per page).</summary>
    private struct FinalizeStats
    {
        public long ToDevice, ToRam, ToDeviceThp, ToRamThp;

        public readonly void AddTo(VmStat vs)
        {
            if (ToDevice + ToRam == 0)
                return;
            vs.Add(VmStatItem.DeviceMigrateToDevice, ToDevice);
            vs.Add(VmStatItem.DeviceMigrateToRam, ToRam);
            vs.Add(VmStatItem.DeviceMigrateToDeviceThp, ToDeviceThp);
            vs.Add(VmStatItem.DeviceMigrateToRamThp, ToRamThp);
            vs.Add(VmStatItem.ThpMigrationSuccess, ToDeviceThp + ToRamThp);
            vs.Add(VmStatItem.PgMigrateSuccess, ToDevice + ToRam);
        }
    }

    // --- migrate by device page (no VMA) --------------------------------------------------------

    /// <summary>migrate_device_range / migrate_device_pfns: collect in-use device pages by mpfn for eviction.</summary>
    public static void MigrateDeviceRange(KernelState kernel, ulong[] src, ulong startMpfn, ulong npages)
    {
        for (ulong i = 0; i < npages; i++)
        {
            ulong mpfn = startMpfn + (i << MigratePfn.Shift);
            var page = MigratePfn.ToPage(kernel, mpfn);
            src[i] = 0;
            if (page.IsNull || page.Test(PageFlags.Tail))
                continue;
            var folio = page.Folio;
            if (!folio.TryGet())
                continue;
            if (!folio.TryLock())
            {
                folio.Put();
                continue;
            }
            src[i] = MigratePfn.FromPage(page) | MigratePfn.Migrate;
            if (folio.IsLarge)
            {
                src[i] |= MigratePfn.Compound;
                i += (ulong)folio.NrPages - 1;
            }
        }
        MigrateDeviceUnmap(kernel, src, npages, default);
    }
}
