namespace CloudMirrorFs.Tests.Support;

/// <summary>
/// A bad sector on a facet's disk: its bytes in the facet's file replaced by zeros under the volume, reads overlapping
/// it failing with an I/O error until a write covers it whole (a disk remaps a bad sector when it is written).
/// </summary>
internal sealed class BadSector
{
    private volatile bool _bad = true;

    public BadSector(FaultInjectingFacet facet, string fileOnDisk, int start, int length)
    {
        using (var fs = new FileStream(fileOnDisk, FileMode.Open, FileAccess.Write))
        {
            fs.Position = start;
            fs.Write(new byte[length]);
        }
        int end = start + length;
        facet.FailRead = (_, offset, n) => _bad && offset < end && offset + n > start;
        facet.FailWrite = (_, offset, n) =>
        {
            if (offset <= start && offset + n >= end)
            {
                _bad = false;
            }
            return false;
        };
    }

    /// <summary>True until a write covered the sector.</summary>
    public bool IsBad => _bad;
}
