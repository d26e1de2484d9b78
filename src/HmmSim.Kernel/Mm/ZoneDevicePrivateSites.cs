namespace HmmSim.Kernel;

/// <summary>The kernel sites each open proposal changes, by kernel function, as the model changed
/// them (Zone, Identity, DevicePageMetadata in KernelVariants). Kept beside the code so `hmmsim
/// proposals` and docs/proposals.md count the same list; a test checks the call-site count against
/// the source.</summary>
internal static class ZoneDevicePrivateSites
{
    internal readonly record struct Site(string Function, string File, string Change);

    /// <summary>ZONE_DEVICE_PRIVATE: the definitions that change. Every caller of the helpers keeps its code.</summary>
    internal static readonly Site[] Changed =
    [
        new("enum zone_type / MAX_NR_ZONES", "include/linux/mmzone.h", "a new ZONE_DEVICE_PRIVATE after ZONE_DEVICE (CONFIG_DEVICE_PRIVATE); one more zone for ZONES_SHIFT"),
        new("zone_is_zone_device", "include/linux/mmzone.h", "true for either device zone"),
        new("page_zonenum / folio_zonenum", "include/linux/mm.h", "may now return ZONE_DEVICE_PRIVATE"),
        new("is_zone_device_page / folio_is_zone_device", "include/linux/mm.h", "zonenum >= ZONE_DEVICE instead of == ZONE_DEVICE, so every caller still means any device page"),
        new("is_device_private_page / folio_is_device_private", "include/linux/memremap.h", "answered by the zone alone: no load of page->pgmap->type"),
        new("is_device_coherent_page / folio_is_device_coherent", "include/linux/memremap.h", "must test ZONE_DEVICE itself, since a device zone no longer implies ZONE_DEVICE"),
        new("is_pci_p2pdma_page", "include/linux/memremap.h", "the same: ZONE_DEVICE itself, then pgmap->type"),
        new("memremap_device_private_pagemap", "mm/memremap.c", "registers the pagemap's pages into ZONE_DEVICE_PRIVATE"),
        new("memmap_init_zone_device", "mm/mm_init.c", "initialises the pages with the zone it is given, and sets pgmap for either zone"),
        new("sparse_add_section / section_activate (per-subsection pgmap)", "mm/sparse.c", "the subsection pgmap bookkeeping applies to both device zones"),
        new("zone_names[]", "mm/page_alloc.c", "a name for the new zone (/proc/zoneinfo, vmstat)"),
    ];

    /// <summary>Occurrences of IsZoneDevice / IsDevicePrivate (is_zone_device_page, folio_is_zone_device,
    /// is_device_private_page, folio_is_device_private) outside their definitions in the kernel and the
    /// test_hmm driver of the model: the callers that needed no change.</summary>
    internal const int QuestionCallSites = 35;

    /// <summary>(space #, space index): what changes when identities are per-pagemap spaces.</summary>
    internal static readonly Site[] IdentityChanged =
    [
        new("device_private_pgmap_tree / memremap_device_private_pagemap", "mm/memremap.c", "mtree_alloc_range over one global offset range becomes an IDA of space ids; each pagemap is 0-based"),
        new("device_private_offset_to_page", "mm/memremap.c", "space id -> pagemap -> page at index, instead of mtree_load of a global offset"),
        new("device_private_page_to_offset", "include/linux/memremap.h", "returns index | space << SWP_MIG_TOTAL_BITS"),
        new("make_*_device_private_entry / softleaf_to_device_private_offset", "include/linux/swapops.h, leafops.h", "the offset field carries the space id above the young/dirty bits"),
        new("pfn_swap_entry_to_page (device-private types)", "include/linux/swapops.h", "masks space and index, not SWP_PFN_MASK alone"),
        new("hmm_pfn_to_page / migrate_pfn_to_page (DEVICE_PRIVATE)", "include/linux/hmm.h, migrate.h", "unchanged code: the identity fits below HMM_PFN_ORDER_SHIFT and the migrate PFN shift"),
    ];

    /// <summary>DevicePageMetadata=Minimal: what changes when a device-private page has a minimal descriptor.</summary>
    internal static readonly Site[] MetadataChanged =
    [
        new("memremap_device_private_pagemap / memmap_init_zone_device", "mm/memremap.c, mm/mm_init.c", "allocates and initialises descriptors of the minimal size instead of struct pages"),
        new("page_folio / folio accessors on device-private folios", "include/linux/mm.h, page-flags.h", "reach only the descriptor's fields; the model BUGs on any other field"),
    ];
}
