using System.Text;

namespace HmmSim.Kernel;

/// <summary>iomem_resource and the kernel/resource.c operations on it. The root spans the whole
/// physical address space [0, 2^physicalAddressBits - 1]. One lock stands in for resource_lock
/// (a rwlock in the kernel; readers here take it exclusively).
///
/// <para><see cref="PhysmemEnd"/> follows the kernel's PHYSMEM_END convention: it is INCLUSIVE,
/// the last byte address the linear map can cover. x86-64 passes the top of the space
/// ((1 &lt;&lt; MAX_PHYSMEM_BITS) - 1); arm64 passes __pa(PAGE_END - 1). get_free_mem_region's
/// search never goes above it.</para></summary>
internal sealed class ResourceTree
{
    /// <summary>SECTION_SIZE_BITS on x86-64 and on arm64 with 4 KiB pages.</summary>
    public const int DefaultSectionSizeBits = 27;

    /// <summary>MAX_IORES_LEVEL: r_show indents at most this many levels.</summary>
    public const int MaxIoresLevel = 5;

    /// <summary>The name a host bridge window has in /proc/iomem.</summary>
    public const string PciBusName = "PCI Bus 0000:00";

    private readonly Lock _lock = new();

    public ResourceTree(int physicalAddressBits, ulong physmemEnd, int sectionSizeBits = DefaultSectionSizeBits)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(physicalAddressBits, 12);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(physicalAddressBits, 64);
        ArgumentOutOfRangeException.ThrowIfLessThan(sectionSizeBits, 12);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(sectionSizeBits, 40);
        PhysicalAddressBits = physicalAddressBits;
        PhysmemEnd = physmemEnd;
        SectionSizeBits = sectionSizeBits;
        var end = physicalAddressBits == 64 ? ulong.MaxValue : (1UL << physicalAddressBits) - 1;
        Root = new Resource("PCI mem", 0, end, IoResourceFlags.Mem);
    }

    /// <summary>iomem_resource.</summary>
    public Resource Root { get; }

    public int PhysicalAddressBits { get; }

    /// <summary>PHYSMEM_END (inclusive).</summary>
    public ulong PhysmemEnd { get; }

    public int SectionSizeBits { get; }

    /// <summary>GFR_DEFAULT_ALIGN = 1 &lt;&lt; PA_SECTION_SHIFT.</summary>
    public ulong GfrDefaultAlign => 1UL << SectionSizeBits;

    /// <summary>The top-level resources (children of the root), lowest address first; a snapshot.</summary>
    public IEnumerable<Resource> TopLevel
    {
        get
        {
            lock (_lock)
                return Root.Children();
        }
    }

    /// <summary>Boot population: "System RAM" [0, ramBytes) busy, then each PCI host bridge window
    /// as a non-busy "PCI Bus 0000:00" resource. Rejects windows that are empty, overlap RAM or each
    /// other, or leave the physical address space.</summary>
    public static ResourceTree Boot(int physBits, ulong physmemEnd, ulong ramBytes, IReadOnlyList<PhysicalRange> pciWindows)
    {
        ArgumentNullException.ThrowIfNull(pciWindows);
        var tree = new ResourceTree(physBits, physmemEnd);
        if (ramBytes == 0 || ramBytes - 1 > tree.Root.End)
            throw new ArgumentOutOfRangeException(nameof(ramBytes), ramBytes, "RAM must be non-empty and fit the physical address space");
        var ram = new Resource("System RAM", 0, ramBytes - 1, IoResourceFlags.SystemRam | IoResourceFlags.Busy);
        if (tree.RequestResource(tree.Root, ram) != Errno.None)
            throw new InvalidOperationException("System RAM did not fit an empty tree");

        foreach (var w in pciWindows)
        {
            if (w.Length == 0)
                throw new ArgumentException($"PCI window at 0x{w.Start:x} is empty", nameof(pciWindows));
            var last = w.Start + (w.Length - 1);
            if (last < w.Start || last > tree.Root.End)
                throw new ArgumentException($"PCI window [0x{w.Start:x}, +0x{w.Length:x}) exceeds the {physBits}-bit physical address space", nameof(pciWindows));
            var window = new Resource(PciBusName, w.Start, last, IoResourceFlags.Mem | IoResourceFlags.Window);
            var conflict = tree.RequestResourceConflict(tree.Root, window);
            if (conflict != null)
                throw new ArgumentException($"PCI window [0x{w.Start:x}-0x{last:x}] overlaps {conflict}", nameof(pciWindows));
        }

        return tree;
    }

    // ---- request / insert / release ---------------------------------------------------------

    /// <summary>request_resource_conflict: null on success, else the conflicting resource (the
    /// parent itself when the range does not fit it).</summary>
    public Resource? RequestResourceConflict(Resource parent, Resource res)
    {
        ArgumentNullException.ThrowIfNull(parent);
        ArgumentNullException.ThrowIfNull(res);
        lock (_lock)
        {
            if (res.Parent != null || ReferenceEquals(res, Root))
                return res;
            return RequestResourceLocked(parent, res);
        }
    }

    /// <summary>request_resource: Errno.None, or EBUSY on any conflict.</summary>
    public Errno RequestResource(Resource parent, Resource res) =>
        RequestResourceConflict(parent, res) == null ? Errno.None : Errno.EBUSY;

    /// <summary>insert_resource_conflict: like request, but when the conflicting resources all fit
    /// inside <paramref name="res"/> it is inserted above them and they become its children.</summary>
    public Resource? InsertResourceConflict(Resource parent, Resource res)
    {
        ArgumentNullException.ThrowIfNull(parent);
        ArgumentNullException.ThrowIfNull(res);
        lock (_lock)
        {
            if (res.Parent != null || ReferenceEquals(res, Root))
                return res;
            return InsertResourceLocked(parent, res);
        }
    }

    /// <summary>insert_resource: Errno.None or EBUSY.</summary>
    public Errno InsertResource(Resource parent, Resource res) =>
        InsertResourceConflict(parent, res) == null ? Errno.None : Errno.EBUSY;

    /// <summary>release_resource: unlink <paramref name="res"/> and its whole subtree. EINVAL if
    /// it is not in a tree.</summary>
    public Errno ReleaseResource(Resource res)
    {
        ArgumentNullException.ThrowIfNull(res);
        lock (_lock)
            return ReleaseResourceLocked(res, releaseChild: true);
    }

    /// <summary>remove_resource: unlink <paramref name="res"/> and move its children up to where
    /// it was (the inverse of insert_resource). EINVAL if it is not in a tree.</summary>
    public Errno RemoveResource(Resource res)
    {
        ArgumentNullException.ThrowIfNull(res);
        lock (_lock)
            return ReleaseResourceLocked(res, releaseChild: false);
    }

    /// <summary>request_mem_region / __request_region(&amp;iomem_resource, ...): a new busy region of
    /// <paramref name="n"/> bytes at <paramref name="start"/>, nested under the deepest non-busy
    /// resource that contains it (a PCI window, for instance). EBUSY on a busy or partial conflict.</summary>
    public Errno RequestRegion(ulong start, ulong n, string? name, IoResourceFlags flags, out Resource? res) =>
        RequestRegion(Root, start, n, name, flags, out res);

    /// <summary>__request_region with an explicit parent.</summary>
    public Errno RequestRegion(Resource parent, ulong start, ulong n, string? name, IoResourceFlags flags, out Resource? res)
    {
        ArgumentNullException.ThrowIfNull(parent);
        var r = new Resource(name, 0, 0, IoResourceFlags.None);
        lock (_lock)
        {
            var err = RequestRegionLocked(r, parent, start, n, name, flags);
            res = err == Errno.None ? r : null;
            return err;
        }
    }

    /// <summary>release_mem_region / __release_region: remove the busy region that is exactly
    /// [start, start + n - 1], looking through non-busy containers. The kernel returns nothing and
    /// only warns about a nonexistent region; here that is EINVAL.</summary>
    public Errno ReleaseRegion(ulong start, ulong n) => ReleaseRegion(Root, start, n);

    /// <summary>__release_region with an explicit parent.</summary>
    public Errno ReleaseRegion(Resource parent, ulong start, ulong n)
    {
        ArgumentNullException.ThrowIfNull(parent);
        var end = unchecked(start + n - 1);
        lock (_lock)
        {
            Resource? prev = null;
            var container = parent;
            var p = parent.Child;
            while (p != null)
            {
                if (p.Start <= start && p.End >= end)
                {
                    if (!p.IsBusy)
                    {
                        container = p;
                        prev = null;
                        p = p.Child;
                        continue;
                    }

                    if (p.Start != start || p.End != end)
                        break;
                    Unlink(container, prev, p);
                    p.Parent = null;
                    p.Sibling = null;
                    return Errno.None;
                }

                prev = p;
                p = p.Sibling;
            }

            return Errno.EINVAL;
        }
    }

    // ---- free-region search -------------------------------------------------------------------

    /// <summary>request_free_mem_region(&amp;iomem_resource, size, name): the highest free range of
    /// <paramref name="size"/> (rounded up to a memory section) below min(root end, PHYSMEM_END),
    /// claimed IORESOURCE_MEM|BUSY with desc IORES_DESC_DEVICE_PRIVATE_MEMORY. ERANGE if none.</summary>
    public Errno RequestFreeMemRegion(ulong size, string? name, out Resource? res) =>
        GetFreeMemRegion(Root, size, GfrDefaultAlign, name, IoResDesc.DevicePrivateMemory,
            GfrFlags.Descending | GfrFlags.RequestRegion, out res);

    /// <summary>alloc_free_mem_region(base, size, align, name): ascending search inside
    /// <paramref name="baseRes"/>, the result inserted (not busy) with IORES_DESC_NONE.</summary>
    public Errno AllocFreeMemRegion(Resource baseRes, ulong size, ulong align, string? name, out Resource? res) =>
        GetFreeMemRegion(baseRes, size, align, name, IoResDesc.None, GfrFlags.None, out res);

    /// <summary>get_free_mem_region over the whole of iomem_resource.</summary>
    public Errno GetFreeMemRegion(ulong size, ulong align, string? name, IoResDesc desc, GfrFlags flags, out Resource? res) =>
        GetFreeMemRegion(Root, size, align, name, desc, flags, out res);

    /// <summary>get_free_mem_region: size is rounded up to <paramref name="align"/> (a power of
    /// two); candidates step by <paramref name="align"/> from gfr_start while gfr_continue holds;
    /// the first candidate that overlaps no resource below <paramref name="baseRes"/> is claimed.
    /// ERANGE when none fits (or when the claim itself fails, as in the kernel).</summary>
    public Errno GetFreeMemRegion(Resource baseRes, ulong size, ulong align, string? name, IoResDesc desc,
        GfrFlags flags, out Resource? res)
    {
        ArgumentNullException.ThrowIfNull(baseRes);
        if (align == 0 || (align & (align - 1)) != 0)
            throw new ArgumentException("align must be a power of two", nameof(align));
        res = null;
        unchecked
        {
            size = (size + align - 1) & ~(align - 1);
            var r = new Resource(name, 0, 0, IoResourceFlags.None);
            lock (_lock)
            {
                for (var addr = GfrStart(baseRes, size, align, flags);
                     GfrContinue(baseRes, addr, align, flags);
                     addr = GfrNext(addr, align, flags))
                {
                    if (RegionIntersectsLocked(baseRes, addr, size, IoResourceFlags.None, IoResDesc.None)
                        != RegionIntersection.Disjoint)
                        continue;

                    if ((flags & GfrFlags.RequestRegion) != 0)
                    {
                        if (RequestRegionLocked(r, Root, addr, size, name, IoResourceFlags.None) != Errno.None)
                            break;
                        r.Desc = desc;
                    }
                    else
                    {
                        r.Start = addr;
                        r.End = addr + size - 1;
                        r.Flags = IoResourceFlags.Mem;
                        r.Desc = desc;
                        if (InsertResourceLocked(baseRes, r) != null)
                            break;
                        if (r.Child != null)
                        {
                            // Only an exclusive range counts; the kernel leaves it inserted
                            // unless a devres undoes it, this model takes it back out.
                            ReleaseResourceLocked(r, releaseChild: false);
                            break;
                        }
                    }

                    res = r;
                    return Errno.None;
                }
            }

            return Errno.ERANGE;
        }
    }

    private ulong GfrStart(Resource baseRes, ulong size, ulong align, GfrFlags flags)
    {
        unchecked
        {
            if ((flags & GfrFlags.Descending) != 0)
            {
                var end = Math.Min(baseRes.End, PhysmemEnd);
                return end - size + 1;
            }

            var start = Math.Max(baseRes.Start, align);
            return (start + align - 1) & ~(align - 1);
        }
    }

    private bool GfrContinue(Resource baseRes, ulong addr, ulong size, GfrFlags flags)
    {
        unchecked
        {
            if ((flags & GfrFlags.Descending) != 0)
                return addr > size && addr >= baseRes.Start;
            return addr > addr - size && addr <= Math.Min(baseRes.End, PhysmemEnd);
        }
    }

    private static ulong GfrNext(ulong addr, ulong size, GfrFlags flags) =>
        unchecked((flags & GfrFlags.Descending) != 0 ? addr - size : addr + size);

    // ---- queries ------------------------------------------------------------------------------

    /// <summary>region_intersects over iomem_resource: how [start, start + size - 1] relates to the
    /// resources with all of <paramref name="flags"/> and (unless None) <paramref name="desc"/>.</summary>
    public RegionIntersection RegionIntersects(ulong start, ulong size, IoResourceFlags flags, IoResDesc desc)
    {
        lock (_lock)
            return RegionIntersectsLocked(Root, start, size, flags, desc);
    }

    /// <summary>walk_iomem_res_desc: calls <paramref name="func"/> with a clipped, unlinked copy of
    /// each resource (at any depth) that overlaps [start, end] and matches flags and desc, lowest
    /// first; stops at the first non-zero return, which it returns. -EINVAL (as an int) when
    /// nothing matched, as the kernel.</summary>
    public int WalkIomemResDesc(IoResDesc desc, IoResourceFlags flags, ulong start, ulong end, Func<Resource, int> func)
    {
        ArgumentNullException.ThrowIfNull(func);
        var ret = -(int)Errno.EINVAL;
        while (start < end)
        {
            Resource? found;
            lock (_lock)
                found = FindNextRes(Root, start, end, flags, desc);
            if (found == null)
                break;
            ret = func(found);
            if (ret != 0)
                break;
            if (found.End == ulong.MaxValue)
                break;
            start = found.End + 1;
        }

        return ret;
    }

    /// <summary>Every resource (at any depth) that overlaps [start, end] and matches flags and
    /// desc, unclipped, in tree order. A convenience built on the same match rule.</summary>
    public IReadOnlyList<Resource> Find(IoResourceFlags flags, IoResDesc desc, ulong start = 0, ulong end = ulong.MaxValue)
    {
        var list = new List<Resource>();
        lock (_lock)
        {
            for (var p = Root.Child; p != null; p = NextResource(p, Root, siblingOnly: false))
            {
                if (p.Start > end)
                    break;
                if (p.End < start)
                    continue;
                if (IsTypeMatch(p, flags, desc))
                    list.Add(p);
            }
        }

        return list;
    }

    /// <summary>/proc/iomem as r_show prints it (seen with CAP_SYS_ADMIN): one line per resource
    /// in tree order, two spaces of indent per level (at most MAX_IORES_LEVEL), start and end in
    /// lowercase hex zero-padded to 4 digits if the root ends below 0x10000, else 8.</summary>
    public string ProcIomem()
    {
        var sb = new StringBuilder();
        lock (_lock)
        {
            var width = Root.End < 0x10000 ? 4 : 8;
            for (var r = Root.Child; r != null; r = NextResource(r, Root, siblingOnly: false))
            {
                var depth = 0;
                for (var p = r; depth < MaxIoresLevel; depth++, p = p.Parent!)
                {
                    if (ReferenceEquals(p.Parent, Root))
                        break;
                }

                sb.Append(' ', depth * 2)
                  .Append(r.Start.ToString("x" + width, System.Globalization.CultureInfo.InvariantCulture))
                  .Append('-')
                  .Append(r.End.ToString("x" + width, System.Globalization.CultureInfo.InvariantCulture))
                  .Append(" : ")
                  .Append(r.Name ?? "<BAD>")
                  .Append('\n');
            }
        }

        return sb.ToString();
    }

    // ---- locked helpers -----------------------------------------------------------------------

    private static Resource? RequestResourceLocked(Resource root, Resource res)
    {
        var start = res.Start;
        var end = res.End;
        if (end < start || start < root.Start || end > root.End)
            return root;
        Resource? prev = null;
        for (var tmp = root.Child; ; prev = tmp, tmp = tmp.Sibling)
        {
            if (tmp == null || tmp.Start > end)
            {
                res.Sibling = tmp;
                if (prev == null)
                    root.Child = res;
                else
                    prev.Sibling = res;
                res.Parent = root;
                return null;
            }

            if (tmp.End < start)
                continue;
            return tmp;
        }
    }

    private static Resource? InsertResourceLocked(Resource parent, Resource res)
    {
        Resource? first;
        for (; ; parent = first)
        {
            first = RequestResourceLocked(parent, res);
            if (first == null)
                return null;
            if (ReferenceEquals(first, parent) || ReferenceEquals(first, res))
                return first;
            if (first.Start > res.Start || first.End < res.End)
                break;
            if (first.Start == res.Start && first.End == res.End)
                break;
        }

        // res covers 'first' (or they partially overlap): find the last sibling res swallows.
        var next = first;
        for (; ; next = next.Sibling!)
        {
            if (next.Start < res.Start || next.End > res.End)
                return next;
            if (next.Sibling == null || next.Sibling.Start > res.End)
                break;
        }

        res.Parent = parent;
        res.Sibling = next.Sibling;
        res.Child = first;
        next.Sibling = null;
        for (var c = first; c != null; c = c.Sibling)
            c.Parent = res;

        if (ReferenceEquals(parent.Child, first))
        {
            parent.Child = res;
        }
        else
        {
            var p = parent.Child!;
            while (!ReferenceEquals(p.Sibling, first))
                p = p.Sibling!;
            p.Sibling = res;
        }

        return null;
    }

    private static Errno ReleaseResourceLocked(Resource old, bool releaseChild)
    {
        var parent = old.Parent;
        if (parent == null)
            return Errno.EINVAL;
        Resource? prev = null;
        for (var tmp = parent.Child; tmp != null; prev = tmp, tmp = tmp.Sibling)
        {
            if (!ReferenceEquals(tmp, old))
                continue;
            if (releaseChild || tmp.Child == null)
            {
                Unlink(parent, prev, tmp);
            }
            else
            {
                var chd = tmp.Child;
                for (; ; chd = chd.Sibling)
                {
                    chd.Parent = parent;
                    if (chd.Sibling == null)
                        break;
                }

                if (prev == null)
                    parent.Child = tmp.Child;
                else
                    prev.Sibling = tmp.Child;
                chd.Sibling = tmp.Sibling;
                tmp.Child = null;
            }

            old.Parent = null;
            old.Sibling = null;
            return Errno.None;
        }

        return Errno.EINVAL;
    }

    private static void Unlink(Resource parent, Resource? prev, Resource node)
    {
        if (prev == null)
            parent.Child = node.Sibling;
        else
            prev.Sibling = node.Sibling;
    }

    private static Errno RequestRegionLocked(Resource res, Resource parent, ulong start, ulong n, string? name,
        IoResourceFlags flags)
    {
        res.Name = name;
        res.Start = start;
        res.End = unchecked(start + n - 1);
        for (; ; )
        {
            res.Flags = parent.Type | parent.ExtType | IoResourceFlags.Busy | flags;
            res.Desc = parent.Desc;
            var conflict = RequestResourceLocked(parent, res);
            if (conflict == null)
                return Errno.None;
            if (!ReferenceEquals(conflict, parent) && !conflict.IsBusy)
            {
                parent = conflict;
                continue;
            }

            // IORESOURCE_MUXED waiters sleep in the kernel; this model has no waiting: fail.
            return Errno.EBUSY;
        }
    }

    private static bool IsTypeMatch(Resource p, IoResourceFlags flags, IoResDesc desc) =>
        (p.Flags & flags) == flags && (desc == IoResDesc.None || desc == p.Desc);

    /// <summary>next_resource: pre-order successor of <paramref name="p"/> within
    /// <paramref name="top"/>'s subtree.</summary>
    private static Resource? NextResource(Resource p, Resource top, bool siblingOnly)
    {
        if (siblingOnly)
            return p.Sibling;
        if (p.Child != null)
            return p.Child;
        while (p.Sibling == null && p.Parent != null && !ReferenceEquals(p.Parent, top))
            p = p.Parent;
        return p.Sibling;
    }

    private static Resource? FindNextRes(Resource root, ulong start, ulong end, IoResourceFlags flags, IoResDesc desc)
    {
        for (var p = root.Child; p != null; p = NextResource(p, root, siblingOnly: false))
        {
            if (p.Start > end)
                return null;
            if (p.End < start)
                continue;
            if (!IsTypeMatch(p, flags, desc))
                continue;
            var copy = p.CopyUnlinked();
            copy.Start = Math.Max(start, p.Start);
            copy.End = Math.Min(end, p.End);
            return copy;
        }

        return null;
    }

    private static RegionIntersection RegionIntersectsLocked(Resource parent, ulong start, ulong size,
        IoResourceFlags flags, IoResDesc desc)
    {
        var resStart = start;
        var resEnd = unchecked(start + size - 1);
        int type = 0, other = 0;
        for (var p = parent.Child; p != null; p = p.Sibling)
        {
            if (!p.Overlaps(resStart, resEnd))
                continue;
            var oStart = Math.Max(p.Start, resStart);
            var oEnd = Math.Min(p.End, resEnd);
            if (IsTypeMatch(p, flags, desc))
            {
                type++;
                continue;
            }

            // Matching descendants can cover the overlap with a non-matching container
            // (System RAM inside a CXL window counts as System RAM).
            var covered = false;
            for (var dp = p.Child; dp != null; dp = NextResource(dp, p, siblingOnly: false))
            {
                if (!dp.Overlaps(resStart, resEnd))
                    continue;
                if (!IsTypeMatch(dp, flags, desc))
                    continue;
                type++;
                if (dp.Start > oStart)
                    break;
                if (dp.End >= oEnd)
                {
                    covered = true;
                    break;
                }

                oStart = Math.Max(oStart, dp.End + 1);
            }

            if (!covered)
                other++;
        }

        if (type == 0)
            return RegionIntersection.Disjoint;
        return other == 0 ? RegionIntersection.Intersects : RegionIntersection.Mixed;
    }
}
