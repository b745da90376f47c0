// IntelliJ Platform Gradle Plugin 2.x. The IDE-independent code is
// ../core (built and tested with Maven); its sources are compiled in here so
// the plugin ships one jar. Gson is bundled with the platform.
plugins {
    id("java")
    id("org.jetbrains.intellij.platform") version "2.1.0"
}

group = "dev.mirrord"
version = "0.1.0"

repositories {
    mavenCentral()
    intellijPlatform {
        defaultRepositories()
    }
}

dependencies {
    intellijPlatform {
        intellijIdeaCommunity("2024.2")
        bundledPlugin("com.intellij.java")
        instrumentationTools()
    }
}

sourceSets {
    main {
        java.srcDir("../core/src/main/java")
    }
}

java {
    toolchain.languageVersion.set(JavaLanguageVersion.of(17))
}

intellijPlatform {
    pluginConfiguration {
        ideaVersion {
            sinceBuild = "242"
        }
    }
}
