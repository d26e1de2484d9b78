using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace HmmSim.Kernel;

/// <summary>mm/gup.c GUP-fast: get_user_pages_fast, pin_user_pages_fast and get_user_pages_fast_only
/// walk the page tables without mmap_lock or the page-table lock, take each page with an
/// add-unless-zero reference, then check that the entry still maps it. Whatever the walk cannot do
/// (non-present or special entries, pages that must not be taken this way) ends the walk there, and
/// gup_fast_fallback hands the rest of the range to the slow path under mmap_lock.
/// The walk runs inside <see cref="MmStruct.LocklessWalkBegin"/>/<see cref="MmStruct.LocklessWalkEnd"/>,
/// the model's local_irq_save/restore: page-table pages are not freed while a walk that may have
/// seen them is in progress (see <see cref="MmStruct.SyncLocklessWalkers"/>).</summary>
internal static partial class Gup
{
    /// <summary>INTERNAL_GUP_FLAGS that the model has (FOLL_UNLOCKABLE and FOLL_MADV_POPULATE are not modelled).</summary>
    private const FollFlags InternalGupFlags = FollFlags.Touch | FollFlags.Tried | FollFlags.Remote | FollFlags.Pin | FollFlags.FastOnly;

    /// <summary>The flags gup_fast_fallback accepts.</summary>
    private const FollFlags FastFallbackFlags = FollFlags.Write | FollFlags.Longterm | FollFlags.Force | FollFlags.Pin | FollFlags.Get
        | FollFlags.FastOnly | FollFlags.NoFault | FollFlags.PciP2pDma | FollFlags.HonorNumaFault;

    /// <summary>Nesting depth of GUP-fast walks on this thread: irqs_disabled() for the assertions.</summary>
    [ThreadStatic]
    private static int _irqsOff;

    /// <summary>get_user_pages_fast: <paramref name="pages"/>.Length pages from <paramref name="start"/>
    /// with a reference each (FOLL_GET). Takes no mmap_lock unless it falls back to the slow path for
    /// the part of the range the lockless walk could not take. Returns how many pages it got (a prefix
    /// of the range), or a negative errno if it got none.</summary>
    public static long GetUserPagesFast(MmStruct mm, ulong start, Span<Page> pages, FollFlags gupFlags)
    {
        if (!IsValidGupArgs(mm.Kernel, ref gupFlags, FollFlags.Get))
            return -(long)Errno.EINVAL;
        return GupFastFallback(mm, start, pages, gupFlags);
    }

    /// <summary>pin_user_pages_fast: as <see cref="GetUserPagesFast"/> with FOLL_PIN; release with <see cref="UnpinUserPage"/>.</summary>
    public static long PinUserPagesFast(MmStruct mm, ulong start, Span<Page> pages, FollFlags gupFlags)
    {
        if (!IsValidGupArgs(mm.Kernel, ref gupFlags, FollFlags.Pin))
            return -(long)Errno.EINVAL;
        return GupFastFallback(mm, start, pages, gupFlags);
    }

    /// <summary>get_user_pages_fast_only: the lockless walk alone, never the slow path (callable where
    /// sleeping is not allowed). Returns the number of pages taken, 0 included.</summary>
    public static long GetUserPagesFastOnly(MmStruct mm, ulong start, Span<Page> pages, FollFlags gupFlags)
    {
        if (!IsValidGupArgs(mm.Kernel, ref gupFlags, FollFlags.Get | FollFlags.FastOnly))
            return -(long)Errno.EINVAL;
        return GupFastFallback(mm, start, pages, gupFlags);
    }

    /// <summary>get_user_pages: the slow path with FOLL_GET, for a caller holding mmap_lock.</summary>
    public static long GetUserPagesLocked(MmStruct mm, ulong start, Span<Page> pages, FollFlags gupFlags)
    {
        if (!IsValidGupArgs(mm.Kernel, ref gupFlags, FollFlags.Touch))
            return -(long)Errno.EINVAL;
        return GetUserPages(mm, start, pages, (gupFlags & FollFlags.Pin) == 0 ? gupFlags | FollFlags.Get : gupFlags);
    }

    /// <summary>pin_user_pages: the slow path with FOLL_PIN, for a caller holding mmap_lock. Returns 0,
    /// not an errno, for invalid flags, as the kernel does.</summary>
    public static long PinUserPagesLocked(MmStruct mm, ulong start, Span<Page> pages, FollFlags gupFlags)
    {
        if (!IsValidGupArgs(mm.Kernel, ref gupFlags, FollFlags.Pin))
            return 0;
        return GetUserPages(mm, start, pages, gupFlags);
    }

    /// <summary>is_valid_gup_args for the exported entry points: rejects internal flags and
    /// inconsistent combinations with a warning, then adds <paramref name="toSet"/>.</summary>
    private static bool IsValidGupArgs(KernelState kernel, ref FollFlags gupFlags, FollFlags toSet)
    {
        if ((gupFlags & InternalGupFlags) != 0)
            return !VmWarn.Warn(kernel, $"GUP: internal flags {gupFlags & InternalGupFlags} passed to an exported GUP call");
        var flags = gupFlags | toSet;
        if (VmWarn.On(kernel, (flags & (FollFlags.Pin | FollFlags.Get)) == (FollFlags.Pin | FollFlags.Get), "GUP: FOLL_GET and FOLL_PIN together")
            || VmWarn.On(kernel, (flags & FollFlags.Pin) == 0 && (flags & FollFlags.Longterm) != 0, "GUP: FOLL_LONGTERM without FOLL_PIN")
            || VmWarn.On(kernel, (flags & (FollFlags.Longterm | FollFlags.PciP2pDma)) == (FollFlags.Longterm | FollFlags.PciP2pDma), "GUP: FOLL_LONGTERM with FOLL_PCI_P2PDMA"))
            return false;
        gupFlags = flags;
        return true;
    }

    /// <summary>gup_fast_fallback: the lockless walk, then __gup_longterm_locked under mmap_lock for
    /// the rest of the range unless FOLL_FAST_ONLY.</summary>
    private static long GupFastFallback(MmStruct mm, ulong start, Span<Page> pages, FollFlags gupFlags)
    {
        var kernel = mm.Kernel;
        if ((gupFlags & ~FastFallbackFlags) != 0)
        {
            VmWarn.Warn(kernel, $"gup_fast_fallback: unexpected flags {gupFlags & ~FastFallbackFlags}");
            return -(long)Errno.EINVAL;
        }
        int nrPages = pages.Length;
        if (nrPages == 0)
            return 0;
        start &= ~(Arch.PageSize - 1);
        ulong len = (ulong)nrPages << Arch.PageShift;
        if (start + len < start)
            return -(long)Errno.EOVERFLOW;
        ulong end = start + len;
        if (end > mm.Arch.TaskSize)
            return -(long)Errno.EFAULT;

        int nrPinned = GupFast(mm, start, end, gupFlags, pages);
        if (nrPinned == nrPages || (gupFlags & FollFlags.FastOnly) != 0)
            return nrPinned;

        // Slow path for the rest: __gup_longterm_locked takes and drops mmap_lock itself (locked == 0).
        long ret;
        mm.MmapLock.EnterReadLock();
        try
        {
            ret = GetUserPages(mm, start + ((ulong)nrPinned << Arch.PageShift), pages[nrPinned..], gupFlags | FollFlags.Touch);
        }
        finally
        {
            mm.MmapLock.ExitReadLock();
        }
        if (ret < 0)
            return nrPinned > 0 ? nrPinned : ret;   // the caller must release what the walk took
        return ret + nrPinned;
    }

    /// <summary>gup_fast: the walk with "interrupts off"; a pin fails as a whole if fork() was
    /// write-protecting this mm's anonymous pages meanwhile (mm->write_protect_seq).</summary>
    private static int GupFast(MmStruct mm, ulong start, ulong end, FollFlags flags, Span<Page> pages)
    {
        bool pin = (flags & FollFlags.Pin) != 0;
        int seq = 0;
        if (pin)
        {
            seq = mm.WriteProtectSeq;
            if ((seq & 1) != 0)
                return 0;   // raw_seqcount_try_begin: fork is copying page tables right now
        }
        int nr;
        int token = mm.LocklessWalkBegin();
        _irqsOff++;
        try
        {
            nr = mm.Exited ? 0 : GupFastRange(mm, mm.Pgd, Arch.PgdirShift, start, end, flags, pages);
        }
        finally
        {
            _irqsOff--;
            mm.LocklessWalkEnd(token);
        }
        if (pin)
        {
            if (mm.WriteProtectSeq != seq)
            {
                // read_seqcount_retry: fork may have made a page we pinned COW-shared. Give them back;
                // the slow path waits for fork on mmap_lock.
                for (int i = 0; i < nr; i++)
                    GupPutFolio(pages[i].Folio, 1, flags);
                return 0;
            }
            SanityCheckPinnedPages(mm.Kernel, pages[..nr]);
        }
        return nr;
    }

    private static ulong AddrEnd(ulong addr, ulong end, int shift)
    {
        ulong boundary = (addr + (1UL << shift)) & ~((1UL << shift) - 1);
        return boundary - 1 < end - 1 ? boundary : end;
    }

    private static int Pages(ulong addr, ulong next) => (int)((next - addr) >> Arch.PageShift);

    /// <summary>A table page's entries, read without the page-table lock.</summary>
    private static ReadOnlySpan<ulong> LocklessTable(KernelState kernel, Pfn table) =>
        MemoryMarshal.Cast<byte, ulong>(kernel.Memmap.PfnToPage(table).ReadData());

    /// <summary>READ_ONCE of one entry (ptep_get_lockless / pmdp_get_lockless).</summary>
    private static ulong ReadOnce(ReadOnlySpan<ulong> table, int index) => Volatile.Read(ref Unsafe.AsRef(in table[index]));

    /// <summary>gup_fast_pgd_range, gup_fast_pud_range and gup_fast_pmd_range over one table of level
    /// <paramref name="shift"/> (the p4d level is folded on both modelled arches). Above the PMD level
    /// only tables are followed: the model maps nothing with PUD leaves, so anything else ends the walk
    /// (the kernel would try gup_fast_pud_leaf). At the PMD level a non-present entry (none, migration,
    /// device-private) ends the walk; a table goes to the PTEs, a present leaf to gup_fast_pmd_leaf.</summary>
    private static int GupFastRange(MmStruct mm, Pfn table, int shift, ulong addr, ulong end, FollFlags flags, Span<Page> pages)
    {
        var arch = mm.Arch;
        var entries = LocklessTable(mm.Kernel, table);
        int nr = 0;
        do
        {
            int index = (int)((addr >> shift) & (Arch.PtrsPerTable - 1));
            ulong entry = ReadOnce(entries, index);
            ulong next = AddrEnd(addr, end, shift);
            int chunk;
            if (entry != 0 && arch.IsTable(entry))
            {
                chunk = shift == Arch.PmdShift
                    ? GupFastPteRange(mm, entry, entries, index, addr, next, flags, pages[nr..])
                    : GupFastRange(mm, arch.TablePfn(entry), shift - 9, addr, next, flags, pages[nr..]);
            }
            else if (shift == Arch.PmdShift && entry != 0 && arch.PmdPresent(entry))
            {
                chunk = GupFastPmdLeaf(mm, entry, entries, index, addr, next, flags, pages[nr..]);
            }
            else
            {
                break;
            }
            nr += chunk;
            if (chunk != Pages(addr, next))
                break;
            addr = next;
        }
        while (addr != end);
        return nr;
    }

    /// <summary>pte_access_permitted: hardware-present (not PROT_NONE), and writable for a write.</summary>
    private static bool PteAccessPermitted(Arch arch, ulong pte, bool write) =>
        arch.PtePresent(pte) && !arch.PteProtNone(pte) && (!write || arch.PteWrite(pte));

    /// <summary>gup_fast_pte_range: takes each page mapped by a present, permitted, non-special PTE,
    /// then re-reads the PMD (a THP collapse may be freeing this table) and the PTE (a zap, migration
    /// or fork may have changed it) and gives the page back if either moved.</summary>
    private static int GupFastPteRange(MmStruct mm, ulong pmd, ReadOnlySpan<ulong> pmdTable, int pmdIndex,
        ulong addr, ulong end, FollFlags flags, Span<Page> pages)
    {
        var kernel = mm.Kernel;
        var arch = mm.Arch;
        bool write = (flags & FollFlags.Write) != 0;
        var pteTable = LocklessTable(kernel, arch.TablePfn(pmd));
        int nr = 0;
        do
        {
            int index = MmStruct.PteIndex(addr);
            ulong pte = ReadOnce(pteTable, index);
            // PROT_NONE always goes to the slow path, which knows the VMA's permissions; a non-present
            // entry (swap, migration, device-private, device-exclusive) fails pte_access_permitted.
            if (arch.PteProtNone(pte) || !PteAccessPermitted(arch, pte, write) || arch.PteSpecial(pte))
                break;
            var pfn = arch.PtePfn(pte);
            if (!kernel.Memmap.PfnValid(pfn))
            {
                VmWarn.Warn(kernel, $"gup_fast_pte_range: a present, non-special PTE at 0x{addr:x} maps {pfn}, which has no memmap");
                break;
            }
            var page = kernel.Memmap.PfnToPage(pfn);
            var folio = TryGrabFolioFast(kernel, page, 1, flags);
            if (folio.IsNull)
                break;
            if (ReadOnce(pmdTable, pmdIndex) != pmd || ReadOnce(pteTable, index) != pte
                || !GupFastFolioAllowed(kernel, folio, flags)
                || !arch.PteWrite(pte) && GupMustUnshare(null, flags, page))
            {
                GupPutFolio(folio, 1, flags);
                break;
            }
            folio.SetFlag(PageFlags.Referenced);
            pages[nr++] = page;
            addr += Arch.PageSize;
        }
        while (addr != end);
        return nr;
    }

    /// <summary>gup_fast_pmd_leaf: a THP or hugetlb PMD, all its pages in [addr, end) at once. The huge
    /// zero PMD is pmd_special and left to the slow path.</summary>
    private static int GupFastPmdLeaf(MmStruct mm, ulong orig, ReadOnlySpan<ulong> pmdTable, int pmdIndex,
        ulong addr, ulong end, FollFlags flags, Span<Page> pages)
    {
        var kernel = mm.Kernel;
        var arch = mm.Arch;
        bool write = (flags & FollFlags.Write) != 0;
        if (arch.PmdProtNone(orig) || write && !arch.PmdWrite(orig) || HugeMemory.IsHugeZeroPmd(kernel, orig))
            return 0;
        int nr = Pages(addr, end);
        var page = kernel.Memmap.PfnToPage(arch.PmdPfn(orig)).Nth(MmStruct.PteIndex(addr));
        var folio = TryGrabFolioFast(kernel, page, nr, flags);
        if (folio.IsNull)
            return 0;
        if (ReadOnce(pmdTable, pmdIndex) != orig
            || !GupFastFolioAllowed(kernel, folio, flags)
            || !arch.PmdWrite(orig) && GupMustUnshare(null, flags, folio.Page()))
        {
            GupPutFolio(folio, nr, flags);
            return 0;
        }
        for (int i = 0; i < nr; i++)
            pages[i] = page.Nth(i);
        folio.SetFlag(PageFlags.Referenced);
        return nr;
    }

    /// <summary>is_zero_page.</summary>
    private static bool IsZeroPage(KernelState kernel, Page page) =>
        !page.Section.InDevicePrivateSpace && page.Number == kernel.ZeroPfn.Value;

    /// <summary>try_grab_folio_fast: FOLL_GET takes <paramref name="refs"/> references; FOLL_PIN also adds
    /// the pin (to _pincount, or GUP_PIN_COUNTING_BIAS per ref on a small folio). A pin refuses a
    /// P2PDMA page without FOLL_PCI_P2PDMA and, with FOLL_LONGTERM, a folio that may not be pinned
    /// long-term (device-coherent, FS DAX). The null folio means "take the slow path".</summary>
    private static Folio TryGrabFolioFast(KernelState kernel, Page page, int refs, FollFlags flags)
    {
        VmWarn.On(kernel, _irqsOff == 0, "try_grab_folio_fast called outside a GUP-fast walk");
        if (VmWarn.On(kernel, (flags & (FollFlags.Get | FollFlags.Pin)) == 0, "try_grab_folio_fast without FOLL_GET or FOLL_PIN"))
            return default;
        if ((flags & FollFlags.PciP2pDma) == 0 && page.IsPciP2pDma)
            return default;
        // The model never refcounts the shared zero page (Gup.PutPage skips it); the kernel does so only for FOLL_GET.
        if (IsZeroPage(kernel, page))
            return page.Folio;
        var folio = TryGetFolio(kernel, page, refs);
        if (folio.IsNull || (flags & FollFlags.Get) != 0)
            return folio;
        if ((flags & FollFlags.Longterm) != 0 && !FolioIsLongtermPinnable(folio))
        {
            folio.PutMany(refs);
            return default;
        }
        if (folio.IsLarge)
            Interlocked.Add(ref folio.TailFor(2, PageField.PinCount, true).RefCount, refs);
        else
            folio.GetMany(refs * (PinCountingBias - 1));
        // The pin is visible before the caller re-reads the entry (smp_mb__after_atomic): Interlocked is a full fence.
        return folio;
    }

    /// <summary>try_get_folio: add-unless-zero on the folio the page is in, then check the page is
    /// still in that folio (a split may have moved it to another).</summary>
    private static Folio TryGetFolio(KernelState kernel, Page page, int refs)
    {
        while (true)
        {
            var folio = page.Folio;
            if (folio.RefCount < 0)
            {
                VmWarn.Warn(kernel, $"try_get_folio: {folio} has a negative refcount ({folio.RefCount})");
                return default;
            }
            if (!folio.TryGetMany(refs))
                return default;
            if (page.Folio == folio)
                return folio;
            folio.PutMany(refs);
        }
    }

    /// <summary>gup_put_folio: drops what try_grab_folio(_fast) took.</summary>
    private static void GupPutFolio(Folio folio, int refs, FollFlags flags)
    {
        if ((flags & FollFlags.Pin) != 0)
        {
            if (folio.IsZero)
                return;
            if (folio.IsLarge)
                Interlocked.Add(ref folio.TailFor(2, PageField.PinCount, true).RefCount, -refs);
            else
                refs *= PinCountingBias;
        }
        else if (folio.IsZero)
        {
            return;
        }
        folio.PutMany(refs);
    }

    /// <summary>folio_is_longterm_pinnable: device-coherent memory must stay evictable and FS DAX
    /// truncatable; the model has no CMA and no ZONE_MOVABLE, which the kernel also refuses.</summary>
    public static bool FolioIsLongtermPinnable(Folio folio)
    {
        if (folio.IsZero)
            return true;
        if (folio.IsDeviceCoherent)
            return false;
        return !(folio.IsZoneDevice && folio.Pgmap?.Type == MemoryType.FsDax);
    }

    /// <summary>gup_fast_folio_allowed: without the VMA, a long-term writable pin is allowed only on
    /// anonymous, shmem and hugetlb folios (no dirty tracking to defeat); anything the walk cannot
    /// tell (no mapping) goes to the slow path. Secretmem is not modelled, so it never matches.</summary>
    private static bool GupFastFolioAllowed(KernelState kernel, Folio folio, FollFlags flags)
    {
        const FollFlags LongtermWritePin = FollFlags.Pin | FollFlags.Longterm | FollFlags.Write;
        bool rejectFileBacked = (flags & LongtermWritePin) == LongtermWritePin;
        bool checkSecretmem = !folio.IsLarge;   // CONFIG_SECRETMEM: secretmem folios are order 0
        if (!rejectFileBacked && !checkSecretmem)
            return true;
        if (VmWarn.On(kernel, folio.Test(PageFlags.Slab), "gup_fast_folio_allowed: a slab folio is mapped to user space"))
            return false;
        if (folio.IsHugetlb)
            return true;
        VmWarn.On(kernel, _irqsOff == 0, "gup_fast_folio_allowed called outside a GUP-fast walk");
        if (folio.IsAnon)
            return true;
        uint mapping = Volatile.Read(ref folio.HeadFor(PageField.Mapping, false).Mapping);
        if (mapping == 0)
            return !rejectFileBacked;
        // Every address_space in the model is shmem (or hugetlbfs, taken above).
        return !rejectFileBacked || kernel.Memmap.Mappings.Get(mapping) is AddressSpace;
    }

    /// <summary>gup_must_unshare: a read-only pin of an anonymous page needs it exclusive first
    /// (FAULT_FLAG_UNSHARE); a read-only long-term pin of a file page needs the VMA to know whether
    /// COW must be broken, which GUP-fast (<paramref name="vma"/> null) leaves to the slow path.</summary>
    private static bool GupMustUnshare(Vma? vma, FollFlags flags, Page page)
    {
        if ((flags & (FollFlags.Write | FollFlags.Pin)) != FollFlags.Pin)
            return false;
        var folio = page.Folio;
        if (!folio.IsAnon)
        {
            if ((flags & FollFlags.Longterm) == 0)
                return false;
            return vma is null || vma.IsCowMapping;
        }
        Interlocked.MemoryBarrier();   // pairs with the barrier where a page stops being exclusive
        // PageAnonExclusive of a hugetlb tail page is the head's.
        return !(folio.IsHugetlb ? folio.Page() : page).AnonExclusive;
    }

    /// <summary>sanity_check_pinned_pages (CONFIG_DEBUG_VM): a pinned anonymous page must be exclusive
    /// (for a THP, either the page or the head, as it may be PMD- or PTE-mapped).</summary>
    private static void SanityCheckPinnedPages(KernelState kernel, ReadOnlySpan<Page> pages)
    {
        foreach (var page in pages)
        {
            if (page.IsNull)
                continue;
            var folio = page.Folio;
            if (IsZeroPage(kernel, page) || !folio.IsAnon)
                continue;
            bool headExclusive = folio.Page().AnonExclusive;
            if (!folio.IsLarge || folio.IsHugetlb ? !headExclusive : !headExclusive && !page.AnonExclusive)
                VmWarn.Warn(kernel, $"sanity_check_pinned_pages: pinned anonymous {page} of {folio} is not exclusive");
        }
    }
}

/// <summary>The per-mm state GUP-fast relies on.</summary>
public sealed partial class MmStruct
{
    private int _writeProtectSeq;
    private int _walkPhase;
    private readonly int[] _walkers = new int[2];
    private readonly Lock _walkSync = new();
    private int _tableFreesWaiting;

    /// <summary>mm->write_protect_seq: odd while fork() write-protects this mm's anonymous pages.</summary>
    internal int WriteProtectSeq => Volatile.Read(ref _writeProtectSeq);

    /// <summary>raw_write_seqcount_begin/end around copy_page_range of a COW mapping.</summary>
    internal void WriteProtectSeqBegin() => Interlocked.Increment(ref _writeProtectSeq);
    internal void WriteProtectSeqEnd() => Interlocked.Increment(ref _writeProtectSeq);

    /// <summary>local_irq_save for a lockless walk of this mm's tables: from here until
    /// <see cref="LocklessWalkEnd"/> no table page the walk may reach is freed. Returns the token to end with.</summary>
    internal int LocklessWalkBegin()
    {
        int phase = Volatile.Read(ref _walkPhase);
        Interlocked.Increment(ref _walkers[phase]);   // a full fence: every entry read comes after it
        return phase;
    }

    internal void LocklessWalkEnd(int token) => Interlocked.Decrement(ref _walkers[token]);

    /// <summary>tlb_remove_table_sync_one: called after a table page was unlinked and before it is freed;
    /// returns once no lockless walk that could have read the old entry is still running. A walk whose
    /// count is taken after the entry was cleared reads the cleared entry (its begin and this check are
    /// full fences), so only walks already counted are waited for: each phase is drained in turn while
    /// new walks count on the other one, so a stream of walks cannot starve the freeing.</summary>
    internal void SyncLocklessWalkers()
    {
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _walkers[0]) == 0 && Volatile.Read(ref _walkers[1]) == 0)
            return;
        Interlocked.Increment(ref _tableFreesWaiting);
        lock (_walkSync)
        {
            for (int round = 0; round < 2; round++)
            {
                int old = _walkPhase;
                Interlocked.Exchange(ref _walkPhase, old ^ 1);
                var spin = new SpinWait();
                while (Volatile.Read(ref _walkers[old]) != 0)
                    spin.SpinOnce(sleep1Threshold: -1);
            }
        }
        Interlocked.Decrement(ref _tableFreesWaiting);
    }

    /// <summary>How many table frees are waiting for lockless walks to finish right now.</summary>
    internal int TableFreesWaiting => Volatile.Read(ref _tableFreesWaiting);
}
