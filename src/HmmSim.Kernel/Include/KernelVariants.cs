namespace HmmSim.Kernel;

/// <summary>The design variants the kernel is built with: the forms of the series that reviewers
/// argued about, and the open proposals. Values mirror the contract's DesignVariants; every default
/// is the latest posted behaviour.</summary>
internal sealed record KernelVariants
{
    public SoftleafMigrationRule SoftleafMigration { get; init; }
    public HmmPfnLayout HmmPfnLayout { get; init; }
    public RmapMatch RmapMatch { get; init; }
    public PgmapPlacement PgmapPlacement { get; init; }
    public DevicePrivateZone Zone { get; init; }
    public DevicePrivateIdentity Identity { get; init; }
    public DevicePageMetadata DevicePageMetadata { get; init; }
}

/// <summary>v1 of the swap-type patch made three of the four migration predicates true for
/// device-private migration entries; v2 made them agree.</summary>
internal enum SoftleafMigrationRule { Consistent, AsPostedV1 }

/// <summary>HMM_PFN_DEVICE_PRIVATE and HMM_PFN_ALLOW_P2P on separate bits, or both on BITS_PER_LONG-7.</summary>
internal enum HmmPfnLayout { Disjoint, AsPosted }

/// <summary>page_vma_mapped_walk's number comparison with or without PVMW_DEVICE_PRIVATE.</summary>
internal enum RmapMatch { PvmwDevicePrivate, PfnOnly }

/// <summary>pgmap in the folio, or in the word compound_head uses (before seed 003).</summary>
internal enum PgmapPlacement { Folio, PageUnion }

/// <summary>ZONE_DEVICE for every device page, or a ZONE_DEVICE_PRIVATE of their own.</summary>
internal enum DevicePrivateZone { ZoneDevice, ZoneDevicePrivate }

/// <summary>One global offset space, or a 0-based space per pgmap.</summary>
internal enum DevicePrivateIdentity { GlobalOffset, PerPagemapSpace }

/// <summary>A whole struct page per device-private page, or a minimal descriptor.</summary>
internal enum DevicePageMetadata { StructPage, Minimal }
