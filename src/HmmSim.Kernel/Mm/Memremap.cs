namespace HmmSim.Kernel;

/// <summary>mm/memremap.c: registering ZONE_DEVICE memory, in today's kernel (memremap_pages over a
/// physical range) and in the redesign (memremap_device_private_pagemap over the device-private
/// address space), and the life of a device folio (zone_device_folio_init, the free path, split).
/// <see cref="AddDevicePrivateMemory"/> is the one place the two designs differ for a driver.</summary>
public static class Memremap
{
    /// <summary>MAX_FOLIO_ORDER: the largest vmemmap_shift memremap_pages accepts (PUD order).</summary>
    internal const int MaxFolioOrder = Arch.PudShift - Arch.PageShift;

    /// <summary>memremap_pages over one physical range [start, start+length): the range's struct pages
    /// join ZONE_DEVICE under <paramref name="pgmap"/>, every folio free (refcount 0) until
    /// zone_device_folio_init hands it out. Each failure also logs a WARNING to dmesg: EINVAL for an empty
    /// or not 2 MiB-aligned range, a vmemmap_shift above MAX_FOLIO_ORDER, MEMORY_DEVICE_PRIVATE in the
    /// redesign (use memremap_device_private_pagemap) or without migrate_to_ram, folio_free and an owner,
    /// MEMORY_DEVICE_COHERENT without folio_free and an owner; ENOMEM when the range overlaps another
    /// pagemap; ENXIO when it intersects System RAM; E2BIG beyond the physical address space.</summary>
    public static Errno MemremapPages(KernelState kernel, DevPagemap pgmap, PhysicalRange range)
    {
        if (range.Length == 0 || (range.Start | range.Length) % Arch.PmdSize != 0)
            return Warn(kernel, Errno.EINVAL, $"memremap_pages: range {range.Start:x}+{range.Length:x} is empty or not 2 MiB (subsection) aligned");
        if (pgmap.VmemmapShift > MaxFolioOrder)
            return Warn(kernel, Errno.EINVAL, "memremap_pages: vmemmap_shift exceeds MAX_FOLIO_ORDER");
        switch (pgmap.Type)
        {
            case MemoryType.DevicePrivate:
                if (kernel.Config.DevicePrivateDesign == DevicePrivateDesign.DeviceAddressSpace)
                    return Warn(kernel, Errno.EINVAL, "memremap_pages: Use memremap_device_private_pagemap() for MEMORY_DEVICE_PRIVATE");
                if (pgmap.Ops.MigrateToRam is null || pgmap.Ops.FolioFree is null || pgmap.Owner is null)
                    return Warn(kernel, Errno.EINVAL, "memremap_pages: MEMORY_DEVICE_PRIVATE needs migrate_to_ram, folio_free and an owner");
                break;
            case MemoryType.DeviceCoherent:
                if (pgmap.Ops.FolioFree is null || pgmap.Owner is null)
                    return Warn(kernel, Errno.EINVAL, "memremap_pages: MEMORY_DEVICE_COHERENT needs folio_free and an owner");
                break;
        }
        ulong first = range.Start >> Arch.PageShift, pages = range.Length >> Arch.PageShift;
        lock (kernel.PgmapLock)
        {
            foreach (var other in kernel.PhysPgmaps)
                if (first < other.First + other.NrPages && other.First < first + pages)
                    return Warn(kernel, Errno.ENOMEM, $"memremap_pages: {range.Start:x}+{range.Length:x} overlaps {other}");
            if (kernel.Resources.RegionIntersects(range.Start, range.Length, IoResourceFlags.SystemRam, IoResDesc.None) != RegionIntersection.Disjoint)
                return Warn(kernel, Errno.ENXIO, $"memremap_pages: {range.Start:x}+{range.Length:x} intersects System RAM");
            ulong end = range.Start + range.Length;
            if (end > 1UL << kernel.Config.PhysicalAddressBits)
                return Warn(kernel, Errno.E2BIG, "memremap_pages: range is beyond the physical address space");
            // add_pages / arch_add_memory: the memmap of the range joins ZONE_DEVICE. On arm64 the vmemmap
            // covers only the linear map, so a struct page past it would be outside vmemmap: the kernel
            // no longer lets request_free_mem_region place one there; pfn_to_page of such a PFN is a BUG here.
            pgmap.First = first;
            pgmap.NrPages = pages;
            pgmap.InDevicePrivateSpace = false;
            kernel.PhysPgmaps.Add(pgmap);
            kernel.Memmap.AddRange(false, first, pages, ZoneType.Device, pgmap);
        }
        return Errno.None;
    }

    /// <summary>memunmap_pages: kill the reference, wait for every page to be freed, remove the memmap.</summary>
    public static void MemunmapPages(KernelState kernel, DevPagemap pgmap)
    {
        if (pgmap.InDevicePrivateSpace)
            ThrowHelper.KernelBug($"memunmap_pages on {pgmap}: use memunmap_device_private_pagemap");
        pgmap.KillAndWait();
        lock (kernel.PgmapLock)
        {
            kernel.PhysPgmaps.Remove(pgmap);
            kernel.Memmap.RemoveRange(false, pgmap.First, pgmap.NrPages);
        }
    }

    /// <summary>memremap_device_private_pagemap (the redesign): reserve <paramref name="nrPages"/> offsets
    /// in the device-private address space; no physical address space is used. EINVAL in today's design
    /// (there is no such space), or for a pagemap that is not MEMORY_DEVICE_PRIVATE, lacks migrate_to_ram
    /// or an owner, or asks for 0 pages; EBUSY when the space has no room. Failures log a WARNING.</summary>
    public static Errno MemremapDevicePrivatePagemap(KernelState kernel, DevPagemap pgmap, ulong nrPages)
    {
        if (kernel.DevicePrivateSpace is null)
            return Warn(kernel, Errno.EINVAL, "memremap_device_private_pagemap: this kernel has no device-private address space (PhysicalAddressSpace design)");
        if (pgmap.Type != MemoryType.DevicePrivate || pgmap.Ops.MigrateToRam is null || pgmap.Owner is null || nrPages == 0)
            return Warn(kernel, Errno.EINVAL, "memremap_device_private_pagemap: needs MEMORY_DEVICE_PRIVATE, migrate_to_ram, an owner and nr_pages");
        var err = kernel.DevicePrivateSpace.Alloc(pgmap, nrPages);
        if (err != Errno.None)
            return Warn(kernel, err, $"memremap_device_private_pagemap: no room for {nrPages} pages in the device-private address space");
        // Huang Ying's proposal: the pages join ZONE_DEVICE_PRIVATE, so page_zonenum alone says what they are.
        var zone = kernel.Config.Variants.Zone == DevicePrivateZone.ZoneDevicePrivate ? ZoneType.DevicePrivate : ZoneType.Device;
        int bytesPerPage = kernel.Config.Variants.DevicePageMetadata == DevicePageMetadata.Minimal ? DevicePrivateDescriptor.BytesPerPage : 64;
        kernel.Memmap.AddRange(true, pgmap.First, nrPages, zone, pgmap, bytesPerPage);
        return Errno.None;
    }

    /// <summary>memunmap_device_private_pagemap: as memunmap_pages, then the offsets return to the
    /// device-private address space.</summary>
    public static void MemunmapDevicePrivatePagemap(KernelState kernel, DevPagemap pgmap)
    {
        if (!pgmap.InDevicePrivateSpace)
            ThrowHelper.KernelBug($"memunmap_device_private_pagemap on {pgmap}, which is not in the device-private address space");
        pgmap.KillAndWait();
        kernel.Memmap.RemoveRange(true, pgmap.First, pgmap.NrPages);
        kernel.DevicePrivateSpace!.Erase(pgmap);
    }

    /// <summary>The seam a driver calls for device-private memory of <paramref name="size"/> bytes:
    /// today's kernel reserves physical address space (request_free_mem_region) and maps it
    /// (memremap_pages); the redesign takes offsets in the device-private address space. Returns the
    /// errno of whichever failed: request_free_mem_region's ERANGE when no free physical address space
    /// is left (logged to dmesg), memremap_pages' or memremap_device_private_pagemap's otherwise.</summary>
    public static Errno AddDevicePrivateMemory(KernelState kernel, DevPagemap pgmap, ulong size, string name)
    {
        if (kernel.Config.DevicePrivateDesign == DevicePrivateDesign.DeviceAddressSpace)
            return MemremapDevicePrivatePagemap(kernel, pgmap, size >> Arch.PageShift);
        var err = kernel.Resources.RequestFreeMemRegion(size, name, out var res);
        if (err != Errno.None)
        {
            kernel.Dmesg.Log($"{name}: request_free_mem_region of {size >> 20} MiB failed ({ErrName(err)}): no free physical address space for device-private memory");
            return err;
        }
        err = MemremapPages(kernel, pgmap, new PhysicalRange(res!.Start, size));
        if (err != Errno.None)
            kernel.Resources.ReleaseRegion(res.Start, size);
        else
            pgmap.Region = res;
        return err;
    }

    /// <summary>The inverse of <see cref="AddDevicePrivateMemory"/> for either design.</summary>
    public static void RemoveDevicePrivateMemory(KernelState kernel, DevPagemap pgmap)
    {
        if (pgmap.InDevicePrivateSpace)
        {
            MemunmapDevicePrivatePagemap(kernel, pgmap);
            return;
        }
        MemunmapPages(kernel, pgmap);
        kernel.Resources.ReleaseRegion(pgmap.First << Arch.PageShift, pgmap.NrPages << Arch.PageShift);
    }

    /// <summary>The page a driver names by its PFN or (redesign) its device-private offset.</summary>
    public static Page PageOf(KernelState kernel, DevPagemap pgmap, ulong indexInPgmap)
    {
        if (indexInPgmap >= pgmap.NrPages)
            ThrowHelper.Argument(nameof(indexInPgmap), $"page {indexInPgmap} is outside {pgmap}");
        return pgmap.InDevicePrivateSpace
            ? kernel.Memmap.DevicePrivateOffsetToPage(new DevicePrivateIndex(pgmap.First + indexInPgmap))
            : kernel.Memmap.PfnToPage(new Pfn(pgmap.First + indexInPgmap));
    }

    /// <summary>zone_device_page_init: an order-0 device folio handed out by its driver, locked,
    /// with one reference.</summary>
    public static Folio ZoneDevicePageInit(Page page) => ZoneDeviceFolioInit(page, 0);

    /// <summary>zone_device_folio_init: hand a free device folio of order <paramref name="order"/> out with
    /// refcount 1, locked, its pages holding pgmap references (compound when order &gt; 0). A page
    /// still referenced or mapped, or a pagemap being torn down, is a BUG; an order of 1, out of range
    /// or not aligned at <paramref name="page"/> is an <see cref="ArgumentException"/>.</summary>
    public static Folio ZoneDeviceFolioInit(Page page, int order)
    {
        var pgmap = page.Section.SubsectionPgmap?[page.Index >> MemSection.SubsectionShift]
            ?? ThrowHelper.KernelBug<DevPagemap>($"zone_device_folio_init on {page}, which is not ZONE_DEVICE");
        if (order is 1 or < 0 or > MaxFolioOrder || (page.Number & ((1UL << order) - 1)) != 0)
            ThrowHelper.Argument(nameof(order), $"order {order} is not a valid device folio order at {page}");
        int nr = 1 << order;
        bool union = page.Section.Owner.Kernel.Config.Variants.PgmapPlacement == PgmapPlacement.PageUnion;
        for (int i = 0; i < nr; i++)
        {
            var p = page.Nth(i);
            DevicePageCensus.Note(p.Section, p.Index, PageField.RefCount, false);
            DevicePageCensus.Note(p.Section, p.Index, PageField.MapCount, false);
            ref var d = ref p.DescFor(PageField.Flags, true, PageFlags.Locked | PageFlags.Head | PageFlags.Tail | PageFlags.LargeRmappable);
            if (d.RefCount != 0)
                VmWarn.Warn(page.Section.Owner.Kernel, $"VM_WARN_ON_FOLIO(folio_ref_count): zone_device_page_init: {page.Nth(i)} still has refcount {d.RefCount}");
            if (d.MapCount != 0)
                ThrowHelper.KernelBug($"zone_device_folio_init: {page.Nth(i)} is still mapped");
            // The pgmap word is not re-initialised here (only memmap_init_zone_device writes it), so a
            // word a former compound_head overwrote stays overwritten.
            uint lost = d.Flags & (uint)PageFlags.PgmapOverwritten;
            d = default;
            d.Flags = lost;
        }
        // Drivers must not allocate after memunmap_pages: the kernel warns and hands the page out anyway.
        if (!pgmap.TryGetRefs(nr))
            VmWarn.Warn(page.Section.Owner.Kernel, $"WARN_ON_ONCE(!percpu_ref_tryget_many): zone_device_page_init on {pgmap}, which is being torn down");
        ref var head = ref page.DescFor(PageField.RefCount, true);
        // set_page_count, then lock_page: from the count on, migrate_device_range (an eviction) can take
        // the page and its lock first, and then the lock waits for it as lock_page sleeps. Setting the
        // bit without waiting let both hold the lock.
        Volatile.Write(ref head.RefCount, 1);
        var folio = page.Folio;
        folio.Lock();
        if (order > 0)
        {
            Interlocked.Or(ref head.Flags, (uint)(PageFlags.Head | PageFlags.LargeRmappable));
            for (int i = 1; i < nr; i++)
            {
                ref var t = ref page.Nth(i).DescFor(PageField.CompoundHead, true);
                // prep_compound_tail: compound_head = head | 1. Before seed 003 that word was also pgmap.
                t.Flags = (uint)PageFlags.Tail | (union ? (uint)PageFlags.PgmapOverwritten : t.Flags);
                t.Mapping = (uint)i;
            }
            page.Nth(1).DescFor(PageField.Order, true).Flags |= (uint)order << 24;
        }
        return folio;
    }

    /// <summary>Splits an unmapped large device folio (locked, one reference held by the caller) to
    /// order 0, as folio_split_unmapped does for a folio under migration: every new folio comes back
    /// locked with one reference, and the pagemap's folio_split hears of each.</summary>
    internal static Errno SplitDeviceFolio(KernelState kernel, Folio folio)
    {
        if (!folio.IsZoneDevice || !folio.IsLarge)
            ThrowHelper.KernelBug($"split of {folio}: not a large ZONE_DEVICE folio");
        return HugeMemory.SplitFolio(kernel, folio, unmappedMigration: true);
    }

    private static Errno Warn(KernelState kernel, Errno err, string message)
    {
        kernel.Dmesg.Log($"WARNING: {message} ({ErrName(err)})");
        return err;
    }

    /// <summary>An errno as the kernel's %pe prints an error pointer ("-ENOMEM").</summary>
    public static string ErrName(Errno e) => $"-{e}";

    /// <summary>page->pgmap of a page whose pgmap word holds (or held) compound_head
    /// (<see cref="PgmapPlacement.PageUnion"/>). The kernel of that time would follow head|1 as a
    /// dev_pagemap pointer; the model reads it as no pagemap and warns: this check is HmmSim's own,
    /// the kernel had none (docs/findings.md).</summary>
    internal static DevPagemap? PgmapWordMisread(Page page)
    {
        VmWarn.Warn(page.Memmap.Kernel, $"HmmSim: page_pgmap({page}) reads a word compound_head overwrote (pgmap shares it before seed 003): not a dev_pagemap");
        return null;
    }

    /// <summary>free_zone_device_folio: the pagemap's folio_free gets the folio back; its pgmap
    /// references are dropped, and its refcount stays 0 until zone_device_folio_init hands it out again.</summary>
    internal static void FreeZoneDeviceFolio(Folio folio)
    {
        var pgmap = folio.Pgmap;
        if (pgmap is null)
        {
            VmWarn.Warn(folio.Memmap.Kernel, $"WARN_ON_ONCE(!pgmap): free_zone_device_folio: {folio}");
            return;
        }
        int nr = folio.NrPages;
        if (folio.IsAnon)
            for (int i = 0; i < nr; i++)
                folio.Page(i).DescFor(PageField.Flags, true, PageFlags.AnonExclusive).Flags &= ~(uint)PageFlags.AnonExclusive;
        folio.ClearFlag(PageFlags.Anon | PageFlags.SwapBacked | PageFlags.Dirty);
        folio.Mapping = 0;
        switch (pgmap.Type)
        {
            case MemoryType.DevicePrivate or MemoryType.DeviceCoherent:
                pgmap.Ops.FolioFree?.Invoke(folio);
                pgmap.PutRefs(nr);
                break;
            case MemoryType.Generic:
                folio.Head.RefCount = 1;
                break;
            default:
                pgmap.Ops.FolioFree?.Invoke(folio);
                break;
        }
    }
}
