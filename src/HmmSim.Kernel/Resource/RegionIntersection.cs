namespace HmmSim.Kernel;

/// <summary>region_intersects() results, in the kernel's enum order.</summary>
internal enum RegionIntersection
{
    /// <summary>REGION_INTERSECTS: overlaps only resources of the asked type (and holes).</summary>
    Intersects = 0,
    /// <summary>REGION_DISJOINT: overlaps no resource of the asked type.</summary>
    Disjoint = 1,
    /// <summary>REGION_MIXED: overlaps the asked type and something else.</summary>
    Mixed = 2,
}
