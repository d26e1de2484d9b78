using System.Runtime.CompilerServices;

namespace HmmSim.Kernel;

/// <summary>mm/hmm.c: hmm_range_fault, which mirrors the CPU page tables of a range into an array of
/// hmm pfns, faulting pages in where the caller asks. Walks and faults run under the mmap lock the
/// caller holds; a fault makes the walk start again from the faulting address.</summary>
public static class RangeFault
{
    /// <summary>HMM_NEED_FAULT and HMM_NEED_WRITE_FAULT: what hmm_pte_need_fault asks of a page.</summary>
    [Flags]
    private enum HmmNeed { None = 0, Fault = 1 << 0, WriteFault = 1 << 1, AllBits = Fault | WriteFault }

    /// <summary>hmm_range_fault. Returns 0, or EBUSY when the notifier sequence moved (the caller
    /// retries), EFAULT, EPERM or ENOMEM. As in the kernel, a walk that faulted something in returns
    /// EBUSY and the walk starts again, after the sequence is checked.</summary>
    public static Errno HmmRangeFault(MmStruct mm, HmmRange range)
    {
        ulong last = range.Start;
        for (int rounds = 0; ; rounds++)
        {
            if (range.Notifier.ReadRetry(range.NotifierSeq))
                return Errno.EBUSY;
            var ret = HmmWalk(mm, range, ref last);
            if (ret != Errno.EBUSY)
            {
                // Not an upstream tracepoint: the model's event for one completed call.
                mm.Kernel.Trace?.Event(mm.Pid, "hmm_range_fault", $"start=0x{range.Start:x} end=0x{range.End:x} npages={(range.End - range.Start) >> Arch.PageShift} default_flags=0x{range.DefaultFlags:x} owner={range.DevPrivateOwner ?? "none"} ret={(ret == Errno.None ? 0 : -(int)ret)}");
                if (ret == Errno.None)
                    mm.Kernel.VmStat.Add(VmStatItem.HmmRangeFaultPages, (long)((range.End - range.Start) >> Arch.PageShift));
                return ret;
            }
            if (rounds > 100_000)
                ThrowHelper.KernelBug($"hmm_range_fault at 0x{last:x} faulted without making progress");
        }
    }

    private static int Index(HmmRange range, ulong addr) => (int)((addr - range.Start) >> Arch.PageShift);

    /// <summary>The request for one page: (hmm_pfns[i] &amp; pfn_flags_mask) | default_flags.</summary>
    private static ulong Req(HmmRange range, int i) => (range.HmmPfns[i] & range.PfnFlagsMask) | range.DefaultFlags;

    /// <summary>hmm_pte_need_fault.</summary>
    private static HmmNeed HmmPteNeedFault(ulong req, ulong cpuFlags)
    {
        if ((req & HmmPfn.ReqFault) == 0)
            return HmmNeed.None;
        if ((req & HmmPfn.ReqWrite) != 0 && (cpuFlags & HmmPfn.Write) == 0)
            return HmmNeed.Fault | HmmNeed.WriteFault;
        return (cpuFlags & HmmPfn.Valid) == 0 ? HmmNeed.Fault : HmmNeed.None;
    }

    /// <summary>hmm_range_need_fault over [start, end).</summary>
    private static HmmNeed HmmRangeNeedFault(HmmRange range, ulong start, ulong end, ulong cpuFlags)
    {
        if (((range.DefaultFlags | range.PfnFlagsMask) & HmmPfn.ReqFault) == 0)
            return HmmNeed.None;
        var required = HmmNeed.None;
        for (ulong a = start; a < end; a += Arch.PageSize)
        {
            required |= HmmPteNeedFault(Req(range, Index(range, a)), cpuFlags);
            if (required == HmmNeed.AllBits)
                break;
        }
        return required;
    }

    private static void Set(HmmRange range, int i, ulong value) =>
        range.HmmPfns[i] = (range.HmmPfns[i] & HmmPfn.InoutFlags) | value;

    private static void HmmPfnsFill(HmmRange range, ulong start, ulong end, ulong value)
    {
        for (ulong a = start; a < end; a += Arch.PageSize)
            Set(range, Index(range, a), value);
    }

    /// <summary>hmm_vma_fault: fault [addr, end) in and make the walk start again at addr.</summary>
    private static Errno HmmVmaFault(Vma vma, ulong addr, ulong end, HmmNeed required, ref ulong last)
    {
        last = addr;
        var flags = FaultFlags.Remote;
        if ((required & HmmNeed.WriteFault) != 0)
        {
            if ((vma.Flags & VmFlags.Write) == 0)
                return Errno.EPERM;
            flags |= FaultFlags.Write;
        }
        for (ulong a = addr; a < end; a += Arch.PageSize)
        {
            var ret = Memory.HandleMmFault(vma, a, flags);
            if ((ret & VmFaultResult.Error) != 0)
                return (ret & VmFaultResult.Oom) != 0 ? Errno.ENOMEM : Errno.EFAULT;
        }
        return Errno.EBUSY;
    }

    /// <summary>hmm_walk_ops with struct hmm_vma_walk (the range and where to restart) as its fields.</summary>
    private struct HmmWalkOps(HmmRange range, ulong last) : IMmWalkOps
    {
        public readonly HmmRange Range = range;
        public ulong Last = last;

        public static MmWalkHandlers Handlers =>
            MmWalkHandlers.PmdEntry | MmWalkHandlers.PteHole | MmWalkHandlers.HugetlbEntry | MmWalkHandlers.TestWalk;

        public int PmdEntry(ref ulong pmd, ulong addr, ulong next, ref MmWalk walk) =>
            -(int)HmmVmaWalkPmd(walk.Mm, walk.Vma!, Range, ref pmd, addr, next, ref Last);

        public int PteHole(ulong addr, ulong next, int depth, ref MmWalk walk) =>
            -(int)HmmVmaWalkHole(walk.Vma, Range, addr, next, ref Last);

        public int HugetlbEntry(ref ulong pte, ulong hmask, ulong addr, ulong next, ref MmWalk walk) =>
            -(int)HmmVmaWalkHugetlbEntry(walk.Mm, walk.Vma!, Range, ref pte, addr, next, ref Last);

        public int TestWalk(ulong start, ulong end, ref MmWalk walk) => HmmVmaWalkTest(walk.Vma!, Range, start, end);

        public readonly int PgdEntry(ref ulong pgd, ulong addr, ulong next, ref MmWalk walk) => 0;
        public readonly int PudEntry(ref ulong pud, ulong addr, ulong next, ref MmWalk walk) => 0;
        public readonly int PteEntry(ref ulong pte, ulong addr, ulong next, ref MmWalk walk) => 0;
    }

    /// <summary>One walk_page_range from <paramref name="last"/>; on EBUSY, last is where to start again.</summary>
    private static Errno HmmWalk(MmStruct mm, HmmRange range, ref ulong last)
    {
        if (last >= range.End)
            return Errno.None;   // an empty range: nothing to walk (walk_page_range would say EINVAL)
        var ops = new HmmWalkOps(range, last);
        int ret = Pagewalk.WalkPageRange(mm, last, range.End, ref ops);
        last = ops.Last;
        return (Errno)(-ret);
    }

    /// <summary>hmm_vma_walk_test: VM_IO, VM_PFNMAP and unreadable VMAs cannot be mirrored; their pages
    /// are errors (an error for the caller if it asked for a fault) and the walk passes over them.</summary>
    private static int HmmVmaWalkTest(Vma vma, HmmRange range, ulong start, ulong end)
    {
        if ((vma.Flags & (VmFlags.Io | VmFlags.PfnMap)) == 0 && (vma.Flags & VmFlags.Read) != 0)
            return 0;
        if (HmmRangeNeedFault(range, start, end, 0) != 0)
            return -(int)Errno.EFAULT;
        HmmPfnsFill(range, start, end, HmmPfn.Error);
        return 1;
    }

    /// <summary>hmm_vma_walk_hole: no VMA is an error for the caller, whatever was asked; a hole in a
    /// VMA faults in what the caller asked for, or reads as empty.</summary>
    private static Errno HmmVmaWalkHole(Vma? vma, HmmRange range, ulong addr, ulong end, ref ulong last)
    {
        var required = HmmRangeNeedFault(range, addr, end, 0);
        if (vma is null)
        {
            if (required != HmmNeed.None)
                return Errno.EFAULT;
            HmmPfnsFill(range, addr, end, HmmPfn.Error);
            return Errno.None;
        }
        if (required != HmmNeed.None)
            return HmmVmaFault(vma, addr, end, required, ref last);
        HmmPfnsFill(range, addr, end, 0);
        return Errno.None;
    }

    /// <summary>hmm_vma_walk_hugetlb_entry: a present huge page is reported as the caller's first page
    /// asks (order 9); a none or non-present entry is handled as the PMD walk handles it.</summary>
    private static Errno HmmVmaWalkHugetlbEntry(MmStruct mm, Vma vma, HmmRange range, ref ulong pte, ulong addr, ulong end, ref ulong last)
    {
        var arch = mm.Kernel.Arch;
        ulong pmd;
        lock (mm.PageTableLock)
            pmd = pte;
        if (pmd != 0 && !arch.IsTable(pmd) && arch.PmdPresent(pmd))
        {
            ulong cpu = arch.PmdWrite(pmd) ? HmmPfn.Valid | HmmPfn.Write : HmmPfn.Valid;
            var req = HmmPteNeedFault(Req(range, Index(range, addr)), cpu);
            if (req != HmmNeed.None)
                return HmmVmaFault(vma, addr, end, req, ref last);
            HmmPfnsFillHuge(arch, range, pmd, addr, end, cpu);
            return Errno.None;
        }
        return HmmVmaWalkPmd(mm, vma, range, ref pte, addr, end, ref last);
    }

    private static void HmmPfnsFillHuge(Arch arch, HmmRange range, ulong pmd, ulong addr, ulong end, ulong cpu)
    {
        ulong haddr = addr & ~(Arch.PmdSize - 1);
        ulong pfn = arch.PmdPfn(pmd).Value + ((addr - haddr) >> Arch.PageShift);
        for (ulong a = addr; a < end; a += Arch.PageSize, pfn++)
            Set(range, Index(range, a), pfn | cpu | HmmPfn.FromOrder(Arch.HpagePmdOrder));
    }

    /// <summary>hmm_vma_walk_pmd: a huge or non-present PMD is reported whole; a PTE table page by page.
    /// As in the kernel, the PMD is read without the page-table lock (pmdp_get_lockless) and the PTE table
    /// is mapped once (pte_offset_map) and read entry by entry without the lock; see <see cref="HmmWalkPteTable"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Errno HmmVmaWalkPmd(MmStruct mm, Vma vma, HmmRange range, ref ulong pmdp, ulong addr, ulong end, ref ulong last)
    {
        var arch = mm.Kernel.Arch;
        while (true)
        {
            // again: a PMD that changed under the walk is read and handled afresh from where the walk is.
            ulong pmd = Volatile.Read(ref pmdp);
            if (pmd == 0)
                return HmmVmaWalkHole(vma, range, addr, end, ref last);
            if (!arch.IsTable(pmd))
            {
                if (arch.PmdPresent(pmd))
                    return HmmVmaHandlePmd(arch, vma, range, pmd, addr, end, ref last);
                return HmmVmaHandleAbsentPmd(mm.Kernel, vma, range, pmd, addr, end, ref last);
            }
            var ret = HmmWalkPteTable(mm, vma, range, ref pmdp, pmd, ref addr, end, ref last);
            if (ret != Errno.EAGAIN)
                return ret;
        }
    }

    /// <summary>The PTE-table half of hmm_vma_walk_pmd: pte_offset_map, then ptep++/hmm_pfns++ over the
    /// table. The common entries (none without a fault asked for, present ones that need no fault and are
    /// not special) are reported here in one loop over the table's words and the caller's pfns; every other
    /// entry leaves the lockless section and goes through <see cref="HmmVmaHandlePte"/> as before, with
    /// the value read.
    /// The table page is read without the page-table lock, inside the mm's lockless-walk section: the model's
    /// rcu_read_lock of pte_offset_map. A table unlinked while the mmap lock is held only for read (a THP
    /// installed over an empty table by migrate_vma, a collapse) is freed through SyncLocklessWalkers, which
    /// waits for this section, so the words read stay the table's; an entry changed under the walk is caught
    /// by the caller's notifier sequence, as in the kernel. After a slow entry the PMD is read again when the
    /// section is re-entered; a different PMD returns EAGAIN with <paramref name="addr"/> at the next page,
    /// and the PMD is handled again from there (pte_offset_map returning NULL: goto again).
    /// Nothing in the section takes the page-table lock, faults or waits: a table free holding that lock
    /// waits for the section to end.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Errno HmmWalkPteTable(MmStruct mm, Vma vma, HmmRange range, ref ulong pmdp, ulong pmd, ref ulong addr, ulong end, ref ulong last)
    {
        var kernel = mm.Kernel;
        var arch = kernel.Arch;
        ulong zeroPfn = kernel.ZeroPfn.Value;
        ulong mask = range.PfnFlagsMask, defaults = range.DefaultFlags;
        // When no entry can ask for a fault, a none entry never needs one (hmm_range_need_fault's early out).
        bool mayFault = ((defaults | mask) & HmmPfn.ReqFault) != 0;
        int first = MmStruct.PteIndex(addr);
        int count = (int)((end - addr) >> Arch.PageShift);
        int k = 0;
        int token = mm.LocklessWalkBegin();
        if (Volatile.Read(ref pmdp) != pmd)
        {
            mm.LocklessWalkEnd(token);
            return Errno.EAGAIN;
        }
        var ptes = mm.Table(arch.TablePfn(pmd)).Slice(first, count);
        var pfns = range.HmmPfns.AsSpan(Index(range, addr), count);
        // pte_present, pte_protnone, pte_write and pte_special read only an entry's flag bits, never its
        // PFN field, so neighbouring entries with the same flags (the common case: one VMA's pages) share
        // one answer: it is worked out through the Arch seam once per distinct flag bits, not per page.
        ulong flagBits = ~PtePfnField(arch);
        ulong knownKey = 0, knownCpu = 0;
        bool known = false, knownPresent = false, knownSpecial = false;
        ulong pte = 0;
        while (k < count)
        {
            // The fast loop: ptep_get (one atomic 64-bit read) and hmm_pfns[k], no lock, no bounds checks past the slices.
            for (; k < count; k++)
            {
                pte = Volatile.Read(ref ptes[k]);
                ulong cur = pfns[k];
                if (pte == 0)
                {
                    if (mayFault && (((cur & mask) | defaults) & HmmPfn.ReqFault) != 0)
                        break;
                    pfns[k] = cur & HmmPfn.InoutFlags;
                    continue;
                }
                ulong key = pte & flagBits;
                if (!known || key != knownKey)
                {
                    knownKey = key;
                    known = true;
                    knownPresent = arch.PtePresent(pte);
                    knownCpu = arch.PteProtNone(pte) ? 0 : HmmPfn.Valid | (arch.PteWrite(pte) ? HmmPfn.Write : 0);
                    knownSpecial = arch.PteSpecial(pte);
                }
                if (!knownPresent || HmmPteNeedFault((cur & mask) | defaults, knownCpu) != HmmNeed.None)
                    break;
                ulong pfn = arch.PtePfn(pte).Value;
                if (knownSpecial && pfn != zeroPfn)
                    break;
                pfns[k] = (cur & HmmPfn.InoutFlags) | pfn | knownCpu;
            }
            if (k == count)
                break;
            // pte_unmap before anything that may lock, fault, wait or call a driver; hmm_vma_handle_pte
            // handles the entry as read (as the kernel's does with its ptep_get) and as it always has.
            mm.LocklessWalkEnd(token);
            ulong a = addr + ((ulong)k << Arch.PageShift);
            var ret = HmmVmaHandlePte(mm, vma, range, pte, a, end, ref last);
            if (ret != Errno.None)
                return ret;
            k++;
            token = mm.LocklessWalkBegin();
            if (Volatile.Read(ref pmdp) != pmd)
            {
                mm.LocklessWalkEnd(token);
                addr += (ulong)k << Arch.PageShift;
                return addr < end ? Errno.EAGAIN : Errno.None;
            }
            // The same PMD may name a table freed and allocated again meanwhile, whose bytes the model may
            // keep elsewhere: map it afresh.
            ptes = mm.Table(arch.TablePfn(pmd)).Slice(first, count);
        }
        mm.LocklessWalkEnd(token);
        return Errno.None;
    }

    /// <summary>The bits of a PTE that hold its PFN: those that change between pfn_pte of the lowest and of
    /// the highest PFN the architecture can address (constant bits pfn_pte adds cancel out).</summary>
    private static ulong PtePfnField(Arch arch) =>
        arch.PfnPte(new Pfn((1UL << (arch.MaxPhysmemBits - Arch.PageShift)) - 1), 0) ^ arch.PfnPte(new Pfn(0), 0);

    /// <summary>hmm_vma_handle_pmd.</summary>
    private static Errno HmmVmaHandlePmd(Arch arch, Vma vma, HmmRange range, ulong pmd, ulong addr, ulong end, ref ulong last)
    {
        ulong cpu = arch.PmdWrite(pmd) ? HmmPfn.Valid | HmmPfn.Write : HmmPfn.Valid;
        var required = HmmRangeNeedFault(range, addr, end, cpu);
        if (required != HmmNeed.None)
            return HmmVmaFault(vma, addr, end, required, ref last);
        HmmPfnsFillHuge(arch, range, pmd, addr, end, cpu);
        return Errno.None;
    }

    /// <summary>hmm_vma_handle_absent_pmd: a PMD-level device-private or migration entry.</summary>
    private static Errno HmmVmaHandleAbsentPmd(KernelState kernel, Vma vma, HmmRange range, ulong pmd, ulong addr, ulong end, ref ulong last)
    {
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        ulong haddr = addr & ~(Arch.PmdSize - 1);
        var entry = arch.PmdToSwpEntry(pmd);
        if (sw.SoftleafIsDevicePrivate(entry))
        {
            // The entry was read without holding the lock across this lookup; the model's lookup reads
            // the memmap (the kernel's is address arithmetic), and a page whose pagemap a RELEASE has
            // removed since means the entry has changed: walk again.
            if (!sw.TryPfnSwapEntryToPage(entry, out var head))
            {
                last = addr;
                return Errno.EBUSY;
            }
            var folio = head.Folio;
            bool write = sw.SoftleafIsDevicePrivateWrite(entry);
            if (ReferenceEquals(folio.Pgmap?.Owner, range.DevPrivateOwner) && range.DevPrivateOwner is not null)
            {
                ulong cpu = HmmPfn.Valid | (write ? HmmPfn.Write : 0) | HmmPfn.FromOrder(Arch.HpagePmdOrder);
                ulong first = HmmPfn.FromPage(folio.Page());
                for (ulong a = addr; a < end; a += Arch.PageSize)
                    Set(range, Index(range, a), (first + ((a - haddr) >> Arch.PageShift)) | cpu);
                return Errno.None;
            }
            // Not ours: each page may still have a P2P alias the caller accepts.
            bool aliased = true;
            for (ulong a = addr; a < end && aliased; a += Arch.PageSize)
            {
                int k = Index(range, a);
                aliased = HmmHandleDevicePrivate(vma, range, k, Req(range, k), folio.Page((int)((a - haddr) >> Arch.PageShift)), write);
            }
            if (aliased)
                return Errno.None;
            var required = HmmRangeNeedFault(range, addr, end, 0);
            if (required != HmmNeed.None)
                return HmmVmaFault(vma, addr, end, required, ref last);
            HmmPfnsFill(range, addr, end, HmmPfn.Error);
            return Errno.None;
        }
        if (sw.SoftleafIsMigration(entry))
        {
            if (HmmRangeNeedFault(range, addr, end, 0) == 0)
            {
                HmmPfnsFill(range, addr, end, 0);
                return Errno.None;
            }
            last = addr;
            Migrate.MigrationEntryWait(kernel, entry);
            return Errno.EBUSY;
        }
        if (HmmRangeNeedFault(range, addr, end, 0) != 0)
            return Errno.EFAULT;
        HmmPfnsFill(range, addr, end, HmmPfn.Error);
        return Errno.None;
    }

    /// <summary>hmm_vma_handle_pte for an entry the walk read (ptep_get, without the page-table lock)
    /// and is no longer in its lockless section for: the entries the fast loop of
    /// <see cref="HmmWalkPteTable"/> does not report itself.</summary>
    private static Errno HmmVmaHandlePte(MmStruct mm, Vma vma, HmmRange range, ulong pte, ulong addr, ulong end, ref ulong last)
    {
        var kernel = mm.Kernel;
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        int i = Index(range, addr);
        ulong req = Req(range, i);
        if (pte == 0)
        {
            var required = HmmPteNeedFault(req, 0);
            if (required != HmmNeed.None)
                return HmmVmaFault(vma, addr, end, required, ref last);
            Set(range, i, 0);
            return Errno.None;
        }
        if (!arch.PtePresent(pte))
        {
            var entry = arch.PteToSwpEntry(pte);
            if (sw.SoftleafIsDevicePrivate(entry))
            {
                // As for the PMD: a page whose pagemap went away since the entry was read means the
                // entry has changed (the model's lookup reads the memmap): walk again.
                if (!sw.TryPfnSwapEntryToPage(entry, out var dpage))
                {
                    last = addr;
                    return Errno.EBUSY;
                }
                if (HmmHandleDevicePrivate(vma, range, i, req, dpage, sw.SoftleafIsDevicePrivateWrite(entry)))
                    return Errno.None;
            }
            var required = HmmPteNeedFault(req, 0);
            if (required == HmmNeed.None)
            {
                Set(range, i, 0);
                return Errno.None;
            }
            if (sw.SoftleafIsMigration(entry))
            {
                last = addr;
                Migrate.MigrationEntryWait(kernel, entry);
                return Errno.EBUSY;
            }
            if (sw.SoftleafIsDevicePrivate(entry) || sw.SoftleafIsDeviceExclusive(entry) || sw.SoftleafIsSwap(entry))
                return HmmVmaFault(vma, addr, end, required, ref last);
            return Errno.EFAULT;
        }
        ulong cpuFlags = arch.PteProtNone(pte) ? 0 : HmmPfn.Valid | (arch.PteWrite(pte) ? HmmPfn.Write : 0);
        var need = HmmPteNeedFault(req, cpuFlags);
        if (need != HmmNeed.None)
            return HmmVmaFault(vma, addr, end, need, ref last);
        var pfn = arch.PtePfn(pte);
        if (arch.PteSpecial(pte) && pfn != kernel.ZeroPfn)
        {
            if (HmmPteNeedFault(req, 0) != 0)
                return Errno.EFAULT;
            Set(range, i, HmmPfn.Error);
            return Errno.None;
        }
        Set(range, i, pfn.Value | cpuFlags);
        return Errno.None;
    }

    /// <summary>hmm_handle_device_private (the P2P series): a device-private page of the caller's own
    /// owner is reported as it is (case 1); another device's page is reported as its P2PDMA alias when
    /// the caller asked for HMM_PFN_ALLOW_P2P and the owner's pagemap offers get_dma_pfn_for_device
    /// (case 2); otherwise false, and the normal fault path migrates it to RAM (case 3).</summary>
    private static bool HmmHandleDevicePrivate(Vma vma, HmmRange range, int i, ulong req, Page page, bool write)
    {
        var pgmap = page.Pgmap;
        ulong cpu = HmmPfn.Valid | (write ? HmmPfn.Write : 0);
        if (range.DevPrivateOwner is not null && ReferenceEquals(pgmap?.Owner, range.DevPrivateOwner))
        {
            Set(range, i, HmmPfn.FromPage(page) | cpu);
            return true;
        }
        if ((req & HmmPfn.AllowP2pFor(page.Memmap.Kernel)) == 0 || pgmap?.Ops.GetDmaPfnForDevice is not { } getDmaPfn)
            return false;
        var (err, dmaPfn) = getDmaPfn(page);
        // Not an upstream tracepoint: the P2P series' decision to report another device's page by its alias.
        vma.Mm.Kernel.Trace?.Event(vma.Mm.Pid, "hmm_p2p_alias", $"address=0x{range.Start + ((ulong)i << Arch.PageShift):x} {page.TraceField} owner={pgmap.Owner} requester={range.DevPrivateOwner ?? "none"} alias_pfn=0x{dmaPfn.Value:x} ret={(err == Errno.None ? 0 : -(int)err)}");
        if (err != Errno.None)
            return false;
        Set(range, i, dmaPfn.Value | cpu);
        return true;
    }
}
