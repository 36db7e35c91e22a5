using CloudMirrorFs.Objects;
using CloudMirrorFs.Options;

namespace CloudMirrorFs.Facets;

/// <summary>Builds facets from their configuration. Kinds this build cannot serve are refused with a clear message.</summary>
public static class FacetFactory
{
    /// <summary>Object-store kinds built by a cloud assembly (s3, azure) register here; folder is built in.</summary>
    public static Func<FacetOptions, IObjectStore?>? CloudStores { get; set; }

    /// <summary>Creates the facet a configuration entry describes, for a volume.</summary>
    public static IFacet Create(FacetOptions options, VolumeOptions volume)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(volume);
        IFacet facet = CreateUnlimited(options, volume);
        return options.BandwidthLimit is { } limit ? new RateLimitedFacet(facet, new BandwidthLimiter(limit, options.ResyncShare)) : facet;
    }

    private static IFacet CreateUnlimited(FacetOptions options, VolumeOptions volume)
    {
        bool createIfMissing = !options.Settings.TryGetValue("createIfMissing", out string? c) || !string.Equals(c, "false", StringComparison.OrdinalIgnoreCase);
        if (options.Kind == "directory")
        {
            return new DirectoryFacet(options.Name, RequirePath(options), createIfMissing);
        }
        CodecObjectStore store = CreateStore(options);
        TimeSpan retention = options.Settings.TryGetValue("retention", out string? r) && TimeSpan.TryParse(r, System.Globalization.CultureInfo.InvariantCulture, out TimeSpan t) ? t : TimeSpan.Zero;
        return new ObjectStoreFacet(options.Name, options.Kind, store, volume.BlockSize, volume.Name, createIfMissing, retention,
            claimFor: volume.StateDir, forceClaim: volume.ForceClaim);
    }

    /// <summary>
    /// The object store an object-store facet (folder, s3, azure) keeps its volume in, with the facet's compression
    /// and encryption applied. Used by the facet and by <c>cmfs restore</c> (which needs nothing else).
    /// </summary>
    public static CodecObjectStore CreateStore(FacetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        IObjectStore raw = options.Kind switch
        {
            "folder" => new FolderObjectStore(RequirePath(options)),
            "directory" => throw new MirrorException(MirrorError.InvalidArgument, $"facet '{options.Name}' is a directory facet, not an object store"),
            _ => CloudStores?.Invoke(options) ?? throw new MirrorException(MirrorError.NotSupported,
                $"facet '{options.Name}': kind '{options.Kind}' is not available in this build; use kind 'folder' (an object store in a folder) or 'directory'"),
        };
        byte[]? key = EncryptionKey.Load(options.Settings.GetValueOrDefault("encryption"), options.Name);
        string compression = options.Settings.GetValueOrDefault("compression") ?? "none";
        if (compression is not ("none" or "brotli"))
        {
            throw new MirrorException(MirrorError.InvalidArgument, $"facet '{options.Name}': compression '{compression}' is unknown; use none or brotli");
        }
        return new CodecObjectStore(raw, key, compression == "brotli");
    }

    private static string RequirePath(FacetOptions options) => options.Path
        ?? throw new MirrorException(MirrorError.InvalidArgument, $"facet '{options.Name}': kind '{options.Kind}' needs a 'path'");
}
