namespace HmmSim.Kernel;

/// <summary>enum mmu_notifier_event (include/linux/mmu_notifier.h), with the kernel's values.</summary>
public enum MmuNotifyEvent
{
    /// <summary>MMU_NOTIFY_UNMAP: the range is being unmapped (munmap, mremap's old range).</summary>
    Unmap = 0,
    /// <summary>MMU_NOTIFY_CLEAR: entries are cleared without the VMA going away (madvise, zap, COW).</summary>
    Clear,
    /// <summary>MMU_NOTIFY_PROTECTION_VMA: the VMA's protection changes (mprotect).</summary>
    ProtectionVma,
    /// <summary>MMU_NOTIFY_PROTECTION_PAGE: one page's protection changes (write-protect for COW, KSM).</summary>
    ProtectionPage,
    /// <summary>MMU_NOTIFY_SOFT_DIRTY: soft-dirty bits are cleared (clear_refs).</summary>
    SoftDirty,
    /// <summary>MMU_NOTIFY_RELEASE: the whole mm is going away (exit_mmap).</summary>
    Release,
    /// <summary>MMU_NOTIFY_MIGRATE: migrate_vma is replacing entries; range owner is the pgmap owner
    /// so a driver can skip invalidations it caused itself.</summary>
    Migrate,
    /// <summary>MMU_NOTIFY_EXCLUSIVE: make_device_exclusive is converting entries; range owner is the caller's.</summary>
    Exclusive,
}

/// <summary>struct mmu_notifier_range: what an invalidation covers, handed to an interval notifier's callback.</summary>
/// <param name="Start">range->start: first user virtual address invalidated.</param>
/// <param name="End">range->end: end of the invalidated range (exclusive).</param>
/// <param name="Event">range->event: why the CPU page tables change.</param>
/// <param name="Owner">range->owner: for MMU_NOTIFY_MIGRATE and MMU_NOTIFY_EXCLUSIVE, the owner cookie the
/// initiator passed (a driver compares it with its own to skip invalidations it caused); otherwise null.</param>
public readonly record struct MmuNotifierRange(ulong Start, ulong End, MmuNotifyEvent Event, object? Owner);

/// <summary>struct mmu_interval_notifier: a driver's subscription to invalidations of [Start, End).
/// The sequence protocol is the kernel's: read_begin returns an even sequence; an invalidation
/// that overlaps makes it odd (set_seq in the callback) and read_retry then reports true.</summary>
public sealed class MmuIntervalNotifier
{
    private long _invalidateSeq = 2;

    internal MmuIntervalNotifier(ulong start, ulong end, Func<MmuIntervalNotifier, MmuNotifierRange, long, bool> invalidate)
    {
        Start = start;
        End = end;
        Invalidate = invalidate;
    }

    /// <summary>interval_tree_node.start: first watched user virtual address.</summary>
    public ulong Start { get; }
    /// <summary>The end of the watched interval (exclusive; the kernel's node.last + 1).</summary>
    public ulong End { get; }
    internal Func<MmuIntervalNotifier, MmuNotifierRange, long, bool> Invalidate { get; }
    internal MmuNotifierSubscriptions? Subscriptions { get; set; }

    /// <summary>mmu_interval_read_begin: waits out an invalidation in progress, returns its sequence.</summary>
    internal long ReadBegin()
    {
        var subs = Subscriptions;
        var spin = new SpinWait();
        while (true)
        {
            long seq = Interlocked.Read(ref _invalidateSeq);
            if (subs is null || !subs.InvalidateInProgress(this))
                return seq;
            spin.SpinOnce();
        }
    }

    /// <summary>mmu_interval_read_retry: true if an invalidation began since <paramref name="seq"/>.</summary>
    internal bool ReadRetry(long seq) => Interlocked.Read(ref _invalidateSeq) != seq;

    /// <summary>mmu_interval_set_seq: called from the invalidate callback under the driver's lock.</summary>
    internal void SetSeq(long seq) => Interlocked.Exchange(ref _invalidateSeq, seq);
}

/// <summary>struct mmu_notifier_subscriptions of one mm: its interval notifiers.</summary>
internal sealed class MmuNotifierSubscriptions
{
    private readonly Lock _lock = new();
    private readonly List<MmuIntervalNotifier> _intervals = [];
    private readonly List<MmuNotifierRange> _active = [];
    private long _seq = 1;

    internal void Insert(MmuIntervalNotifier n)
    {
        lock (_lock)
        {
            _intervals.Add(n);
            n.Subscriptions = this;
        }
    }

    internal void Remove(MmuIntervalNotifier n)
    {
        lock (_lock)
        {
            _intervals.Remove(n);
            n.Subscriptions = null;
        }
    }

    internal bool InvalidateInProgress(MmuIntervalNotifier n)
    {
        lock (_lock)
        {
            foreach (var r in _active)
                if (r.Start < n.End && n.Start < r.End)
                    return true;
            return false;
        }
    }

    internal void Start(MmuNotifierRange range)
    {
        MmuIntervalNotifier[] hits;
        int count = 0;
        long seq;
        lock (_lock)
        {
            _active.Add(range);
            _seq += 2;
            seq = _seq;   // odd while invalidating
            // Reused per thread: an invalidation runs per migration window and per CPU page-table change.
            hits = _hitsScratch is { } spare && spare.Length >= _intervals.Count ? spare : new MmuIntervalNotifier[Math.Max(4, _intervals.Count)];
            _hitsScratch = null;
            foreach (var n in _intervals)
                if (n.Start < range.End && range.Start < n.End)
                    hits[count++] = n;
        }
        try
        {
            for (int i = 0; i < count; i++)
                hits[i].Invalidate(hits[i], range, seq);
        }
        finally
        {
            Array.Clear(hits, 0, count);
            _hitsScratch = hits;   // a nested invalidation on this thread made its own
        }
    }

    [ThreadStatic]
    private static MmuIntervalNotifier[]? _hitsScratch;

    internal void End(MmuNotifierRange range)
    {
        lock (_lock)
            _active.Remove(range);
    }
}

/// <summary>mmu_notifier_invalidate_range_start/_end and mmu_interval_notifier_insert/remove.</summary>
public static class MmuNotifier
{
    /// <summary>Start and end of an invalidation around a change the caller has just made or is about
    /// to make; the model calls both at once since page-table changes happen under mmap/ptl locks.</summary>
    internal static void InvalidateRange(MmStruct mm, MmuNotifyEvent ev, ulong start, ulong end, object? owner)
    {
        var subs = mm.Notifiers;
        if (subs is null)
            return;
        var range = new MmuNotifierRange(start, end, ev, owner);
        TraceInvalidateRangeStart(mm, range);
        subs.Start(range);
        subs.End(range);
    }

    internal static void InvalidateRangeStart(MmStruct mm, MmuNotifierRange range)
    {
        if (mm.Notifiers is not { } subs)
            return;
        TraceInvalidateRangeStart(mm, range);
        subs.Start(range);
    }

    /// <summary>Not an upstream tracepoint: an invalidation mirrors see (only an mm with notifiers has
    /// any, as mm_has_notifiers gates the kernel's call), with its event and owner.</summary>
    private static void TraceInvalidateRangeStart(MmStruct mm, MmuNotifierRange range) =>
        mm.Kernel.Trace?.Event(mm.Pid, "mmu_notifier_invalidate_range_start", $"start=0x{range.Start:x} end=0x{range.End:x} event={MmuNotifyEventName(range.Event)} owner={range.Owner ?? "none"}");

    /// <summary>The MMU_NOTIFY_* name of an event, as the kernel's enum spells it.</summary>
    internal static string MmuNotifyEventName(MmuNotifyEvent e) => e switch
    {
        MmuNotifyEvent.Unmap => "MMU_NOTIFY_UNMAP",
        MmuNotifyEvent.Clear => "MMU_NOTIFY_CLEAR",
        MmuNotifyEvent.ProtectionVma => "MMU_NOTIFY_PROTECTION_VMA",
        MmuNotifyEvent.ProtectionPage => "MMU_NOTIFY_PROTECTION_PAGE",
        MmuNotifyEvent.SoftDirty => "MMU_NOTIFY_SOFT_DIRTY",
        MmuNotifyEvent.Release => "MMU_NOTIFY_RELEASE",
        MmuNotifyEvent.Migrate => "MMU_NOTIFY_MIGRATE",
        MmuNotifyEvent.Exclusive => "MMU_NOTIFY_EXCLUSIVE",
        _ => e.ToString(),
    };
    internal static void InvalidateRangeEnd(MmStruct mm, MmuNotifierRange range) => mm.Notifiers?.End(range);

    /// <summary>mmu_interval_notifier_insert: watch [<paramref name="start"/>, start + <paramref name="length"/>)
    /// of <paramref name="mm"/>. <paramref name="invalidate"/> is ops->invalidate: called with the range and
    /// the new sequence (call <see cref="MmuIntervalSetSeq"/> under the driver's lock) before the CPU
    /// page tables change. Its bool is the kernel's "handled" answer for non-blockable ranges; the
    /// model only issues blockable invalidations, so return true. Safe to call while invalidations run.</summary>
    public static MmuIntervalNotifier MmuIntervalNotifierInsert(MmStruct mm, ulong start, ulong length,
        Func<MmuIntervalNotifier, MmuNotifierRange, long, bool> invalidate)
    {
        var n = new MmuIntervalNotifier(start, start + length, invalidate);
        lock (mm.PageTableLock)
            mm.Notifiers ??= new MmuNotifierSubscriptions();
        mm.Notifiers.Insert(n);
        return n;
    }

    /// <summary>mmu_interval_notifier_remove: stop watching; invalidations that start afterwards no
    /// longer call <paramref name="n"/>. Removing twice is harmless.</summary>
    public static void MmuIntervalNotifierRemove(MmuIntervalNotifier n) => n.Subscriptions?.Remove(n);

    /// <summary>mmu_interval_read_begin: waits out an invalidation in progress, returns its sequence.</summary>
    public static long MmuIntervalReadBegin(MmuIntervalNotifier mni) => mni.ReadBegin();

    /// <summary>mmu_interval_read_retry: true if an invalidation began since <paramref name="seq"/>.</summary>
    public static bool MmuIntervalReadRetry(MmuIntervalNotifier mni, long seq) => mni.ReadRetry(seq);

    /// <summary>mmu_interval_set_seq: from the invalidate callback, under the driver's lock.</summary>
    public static void MmuIntervalSetSeq(MmuIntervalNotifier mni, long seq) => mni.SetSeq(seq);
}
