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
        bool createIfMissing = !options.Settings.TryGetValue("createIfMissing", out string? c) || !string.Equals(c, "false", StringComparison.OrdinalIgnoreCase);
        switch (options.Kind)
        {
            case "directory":
                return new DirectoryFacet(options.Name, RequirePath(options), createIfMissing);
            case "folder":
                return new ObjectStoreFacet(options.Name, options.Kind, new FolderObjectStore(RequirePath(options)), volume.BlockSize, volume.Name, createIfMissing);
            default:
                IObjectStore store = CloudStores?.Invoke(options) ?? throw new MirrorException(MirrorError.NotSupported,
                    $"facet '{options.Name}': kind '{options.Kind}' is not available in this build; use kind 'folder' (an object store in a folder) or 'directory'");
                return new ObjectStoreFacet(options.Name, options.Kind, store, volume.BlockSize, volume.Name, createIfMissing);
        }
    }

    private static string RequirePath(FacetOptions options) => options.Path
        ?? throw new MirrorException(MirrorError.InvalidArgument, $"facet '{options.Name}': kind '{options.Kind}' needs a 'path'");
}
